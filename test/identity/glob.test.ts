/** Glob matching and glob relations against brute-force references, and the step count of adversarial matches. */
import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobs, globContains, globsOverlap, globTokens, matchTokens } from '../../src/util/glob.js';

/** Small seeded generator, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function randomString(r: () => number, alphabet: readonly string[], maxLen: number): string {
  let out = '';
  const len = Math.floor(r() * (maxLen + 1));
  for (let i = 0; i < len; i++) out += pick(r, alphabet);
  return out;
}

/** Reference: the glob as a code-point regular expression (fine on the short inputs it sees here). */
function reference(glob: string, value: string): boolean {
  let src = '';
  for (const ch of glob) src += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}*?]/g, '\\$&');
  return new RegExp(`^${src}$`, 'su').test(value);
}

/** Every string over `alphabet` up to `maxLen` characters. */
function allStrings(alphabet: readonly string[], maxLen: number): string[] {
  const out = [''];
  let layer = [''];
  for (let n = 1; n <= maxLen; n++) {
    layer = layer.flatMap((s) => alphabet.map((c) => s + c));
    out.push(...layer);
  }
  return out;
}

/** A string-shaped object counting every character the matcher reads. */
function counted(value: string): { text: string; reads: () => number } {
  let reads = 0;
  const text = {
    length: value.length,
    charCodeAt: (i: number) => (reads++, value.charCodeAt(i)),
    codePointAt: (i: number) => (reads++, value.codePointAt(i)),
  } as unknown as string;
  return { text, reads: () => reads };
}

describe('glob matching agrees with a reference matcher', () => {
  const globAlphabet = ['a', 'b', '*', '?', 'é', '😀', '.', '/'];
  const valueAlphabet = ['a', 'b', 'c', '*', '?', 'é', '😀', '.', '/'];

  it('on random globs and values, including literal * and ? in values and astral characters', () => {
    const r = rng(7);
    for (let n = 0; n < 20_000; n++) {
      const glob = randomString(r, globAlphabet, 7) || 'a';
      const value = randomString(r, valueAlphabet, 9);
      const got = compileGlob(glob)(value);
      if (got !== reference(glob, value)) expect({ glob, value, got }).toEqual({ glob, value, got: !got });
    }
  });

  it('on lists: true exactly when some glob of the list matches', () => {
    const r = rng(11);
    for (let n = 0; n < 3_000; n++) {
      const globs = Array.from({ length: 1 + Math.floor(r() * 4) }, () => randomString(r, globAlphabet, 5) || 'b');
      const value = randomString(r, valueAlphabet, 7);
      expect(compileGlobs(globs)(value), JSON.stringify({ globs, value })).toBe(globs.some((g) => reference(g, value)));
    }
    expect(compileGlobs([])('a')).toBe(false);
  });

  it('treats ? as one code point, never half of a surrogate pair', () => {
    expect(compileGlob('x?y')('x😀y')).toBe(true);
    expect(compileGlob('x??y')('x😀y')).toBe(false);
    expect(compileGlob('*?')('😀')).toBe(true);
  });
});

describe('glob matching cost', () => {
  const adversarial: Array<[string, (n: number) => string]> = [
    ['/data/*/*.csv', (n) => `/data/${'a/'.repeat(n / 2)}`],
    ['*a*a*a*a*a*b', (n) => 'a'.repeat(n)],
    ['a*a*a*a*a*a*a*a*ab', (n) => 'a'.repeat(n)],
    ['*?*?*?*?x', (n) => 'y'.repeat(n)],
    ['*/x/*/y/*/z', (n) => '/x/'.repeat(n / 3)],
  ];

  it('reads at most (value + 1) × (glob + 1) characters, growing linearly with the value', () => {
    for (const [glob, make] of adversarial) {
      const p = globTokens(glob);
      const reads: number[] = [];
      for (const n of [1_024, 4_096, 16_384, 65_536]) {
        const { text, reads: count } = counted(make(n));
        expect(matchTokens(p, text)).toBe(false);
        expect(count(), glob).toBeLessThanOrEqual((n + 1) * (p.length + 1));
        reads.push(count());
      }
      // Four times the input never costs more than about four times the steps (a backtracking matcher goes quadratic).
      for (let i = 1; i < reads.length; i++) expect(reads[i]! / reads[i - 1]!, glob).toBeLessThan(4.5);
    }
  });
});

describe('glob relations agree with brute force over short names', () => {
  // Names may hold literal `*` and `?`: a relation must treat the globs as sets of names, not as strings.
  const names = allStrings(['a', 'b', '*', '?'], 5);
  const globs = allStrings(['a', '*', '?'], 3).filter((g) => g.length > 0);

  it('containment is sound: whenever it says yes, every name of the inner glob matches the outer one', () => {
    let proven = 0;
    for (const outer of globs) {
      for (const inner of globs) {
        if (!globContains(outer, inner)) continue;
        proven++;
        const witness = names.find((s) => reference(inner, s) && !reference(outer, s));
        expect(witness, `${inner} within ${outer}`).toBeUndefined();
      }
    }
    expect(proven).toBeGreaterThan(globs.length);
  });

  it('containment proves the plain cases: a glob within itself, within *, and fixed names within their globs', () => {
    for (const g of globs) {
      expect(globContains(g, g)).toBe(true);
      expect(globContains('*', g)).toBe(true);
    }
    expect(globContains('gh__*', 'gh__issue_*')).toBe(true);
    expect(globContains('gh__*', 'gh__a?')).toBe(true);
    expect(globContains('*_?', '*_x')).toBe(true);
    expect(globContains('conf__test_?', 'conf__test_*')).toBe(false);
    expect(globContains('a?', 'a*')).toBe(false);
    expect(globContains('a*', '?*')).toBe(false);
  });

  it('overlap is exact: true exactly when some name matches both', () => {
    const short = allStrings(['a', 'b'], 6);
    const pairs = allStrings(['a', 'b', '*', '?'], 3).filter((g) => g.length > 0);
    for (const x of pairs) {
      for (const y of pairs) {
        expect(globsOverlap(x, y), `${x} / ${y}`).toBe(short.some((s) => reference(x, s) && reference(y, s)));
      }
    }
  });
});

/**
 * Glob matching for tool, server, resource and argument patterns: `*` any run of characters, `?` one character (one
 * Unicode code point). Compiled once per reload into a matcher that never backtracks further than the last `*`, so a
 * match costs at most O(value length × glob length) steps whatever the input: no regular expressions.
 */

export type Matcher = (value: string) => boolean;

/**
 * The longest value (in UTF-16 code units) a policy compares against a glob. Longer names, URIs and arguments are
 * refused by the policy before any glob runs, which keeps the worst case of one check small.
 */
export const MAX_GLOB_INPUT = 65_536;

const never: Matcher = () => false;
const always: Matcher = () => true;
const STAR = -1;
const ANY_ONE = -2;

export function hasWildcard(glob: string): boolean {
  return glob.includes('*') || glob.includes('?');
}

/** A glob as code points, with `*` → STAR (runs collapsed) and `?` → ANY_ONE. */
export function globTokens(glob: string): Int32Array {
  const out: number[] = [];
  for (const ch of glob) {
    if (ch === '*') {
      if (out[out.length - 1] !== STAR) out.push(STAR);
    } else out.push(ch === '?' ? ANY_ONE : ch.codePointAt(0)!);
  }
  return Int32Array.from(out);
}

/** Width in code units of the code point at `i` (2 for a surrogate pair). */
function width(v: string, i: number): number {
  const c = v.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < v.length) {
    const d = v.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 2;
  }
  return 1;
}

/**
 * Two-pointer wildcard match: on a mismatch, retry from the most recent `*` with one more character swallowed by it.
 * Earlier stars never need revisiting (a later star can absorb whatever they would have), so each restart moves the
 * value pointer forward and the loop runs at most value × glob times.
 */
export function matchTokens(p: Int32Array, v: string): boolean {
  let i = 0;
  let j = 0;
  let star = -1;
  let resume = 0;
  const n = v.length;
  const m = p.length;
  while (i < n) {
    const t = j < m ? p[j]! : 0;
    if (j < m && t === STAR) {
      star = j++;
      resume = i;
      continue;
    }
    if (j < m) {
      if (t === ANY_ONE) {
        i += width(v, i);
        j++;
        continue;
      }
      const c = v.codePointAt(i)!;
      if (c === t) {
        i += c > 0xffff ? 2 : 1;
        j++;
        continue;
      }
    }
    if (star < 0) return false;
    resume += width(v, resume);
    i = resume;
    j = star + 1;
  }
  while (j < m && p[j] === STAR) j++;
  return j === m;
}

/** Compile one glob into a matcher. Plain names compare by equality (the common, fastest case). */
export function compileGlob(glob: string): Matcher {
  if (glob === '*') return always;
  if (!hasWildcard(glob)) return (v) => v === glob;
  const p = globTokens(glob);
  return (v) => matchTokens(p, v);
}

/** Whether some name starting with `prefix` matches `glob`. */
export function globReachesPrefix(glob: string, prefix: string): boolean {
  let i = 0;
  for (; i < glob.length && i < prefix.length; i++) {
    const c = glob[i];
    if (c === '*') return true;
    if (c !== '?' && c !== prefix[i]) return false;
  }
  return i === prefix.length;
}

/** Whether `glob` matches every name starting with `prefix`. */
export function globCoversPrefix(glob: string, prefix: string): boolean {
  return !glob.includes('?') && compileGlob(glob)(`${prefix}*`);
}

/** Compile a list of globs into one matcher that is true when any glob matches. */
export function compileGlobs(globs: readonly string[] | undefined): Matcher {
  if (!globs || globs.length === 0) return never;
  if (globs.includes('*')) return always;
  const exact = new Set<string>();
  const patterns: Matcher[] = [];
  for (const g of globs) {
    if (hasWildcard(g)) patterns.push(compileGlob(g));
    else exact.add(g);
  }
  if (patterns.length === 0) return (v) => exact.has(v);
  return (v) => {
    if (exact.has(v)) return true;
    for (const m of patterns) if (m(v)) return true;
    return false;
  };
}

/** The longest glob the relations below compare (scope globs sent by callers are refused beyond it). */
export const MAX_RELATION_GLOB = 256;

/** Shared walk of two token lists, memoised on (i, j) so it is O(|a|·|b|) at most. */
function related(a: Int32Array, b: Int32Array, step: (i: number, j: number, walk: (i: number, j: number) => boolean) => boolean): boolean {
  if (a.length > MAX_RELATION_GLOB || b.length > MAX_RELATION_GLOB) return false;
  const memo = new Int8Array((a.length + 1) * (b.length + 1));
  const walk = (i: number, j: number): boolean => {
    const k = i * (b.length + 1) + j;
    if (memo[k] !== 0) return memo[k] === 1;
    const r = step(i, j, walk);
    memo[k] = r ? 1 : 2;
    return r;
  };
  return walk(0, 0);
}

/** Whether some name matches both globs. */
export function globsOverlap(x: string, y: string): boolean {
  const a = globTokens(x);
  const b = globTokens(y);
  return related(a, b, (i, j, walk) => {
    const ai = i < a.length ? a[i]! : undefined;
    const bj = j < b.length ? b[j]! : undefined;
    if (ai === undefined && bj === undefined) return true;
    if (ai === STAR) return walk(i + 1, j) || (bj !== undefined && walk(i, j + 1));
    if (bj === STAR) return walk(i, j + 1) || (ai !== undefined && walk(i + 1, j));
    if (ai === undefined || bj === undefined) return false;
    return (ai === bj || ai === ANY_ONE || bj === ANY_ONE) && walk(i + 1, j + 1);
  });
}

/**
 * Whether every name `inner` matches is also matched by `outer` (as sets of names, so `?` in `inner` stands for any
 * character, never a literal `?` or `*`). Sound, and conservative where a proof would need to look ahead: a `false`
 * may occasionally refuse a glob that is in fact contained, never the reverse.
 */
export function globContains(outer: string, inner: string): boolean {
  const a = globTokens(inner);
  const b = globTokens(outer);
  return related(a, b, (i, j, walk) => {
    if (i === a.length) {
      while (j < b.length && b[j] === STAR) j++;
      return j === b.length;
    }
    if (j === b.length) return false;
    const ai = a[i]!;
    const bj = b[j]!;
    // outer's `*` either stops here or swallows the next piece of inner (a character, a `?` or a whole `*`).
    if (bj === STAR) return walk(i, j + 1) || walk(i + 1, j);
    if (ai === STAR) return false;
    if (ai === ANY_ONE) return bj === ANY_ONE && walk(i + 1, j + 1);
    return (bj === ANY_ONE || bj === ai) && walk(i + 1, j + 1);
  });
}

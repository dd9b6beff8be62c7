/** Argument rules over awkward values: random rule sets against a reference, arrays, objects, Unicode forms, size. */
import { describe, expect, it } from 'vitest';
import type { ToolRule } from '../../src/config/types.js';
import { compilePolicy, MAX_NAME_LENGTH } from '../../src/identity/policy.js';
import { MAX_GLOB_INPUT } from '../../src/util/glob.js';
import { agent } from './helpers.js';

function policyWith(rules: ToolRule[], allow = ['*']) {
  return compilePolicy(agent('a', { tools: { allow, deny: [], rules } }));
}

function reference(glob: string, value: string): boolean {
  let src = '';
  for (const ch of glob) src += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  return new RegExp(`^${src}$`, 'su').test(value);
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('argument rules: every matching rule holds', () => {
  it('agrees with "every rule whose tool glob matches has all its arguments matching" on random rule sets', () => {
    const r = rng(3);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const toolGlobs = ['s__*', 's__e*', 's__echo', '*echo', 's__?cho', 'x__*'];
    const argGlobs = ['*', 'ok-*', '*-1', 'ok-?', 'evil'];
    const values = ['ok-1', 'ok-12', 'evil', 'x-1', '', 'ok-'];
    for (let n = 0; n < 2_000; n++) {
      const rules: ToolRule[] = Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({ tool: pick(toolGlobs), args: { text: pick(argGlobs) } }));
      const text = pick(values);
      const expected = rules.every((rule) => !reference(rule.tool, 's__echo') || reference(rule.args!.text!, text));
      const d = policyWith(rules).checkToolCall('s__echo', { text });
      expect(d.decision, JSON.stringify({ rules, text })).toBe(expected ? 'allow' : 'deny');
    }
  });

  it('refuses the second rule\'s violation after a broader first rule matched', () => {
    const p = policyWith([
      { tool: 'conf__e*', args: { text: '*' } },
      { tool: 'conf__echo', args: { text: 'ok-*' } },
    ]);
    expect(p.checkToolCall('conf__echo', { text: 'evil' })).toMatchObject({ decision: 'deny', refusal: { reason: 'policy_denied' } });
    expect(p.checkToolCall('conf__echo', { text: 'ok-1' })).toEqual({ decision: 'allow' });
    expect(p.checkToolCall('conf__extra', { text: 'evil' })).toEqual({ decision: 'allow' });
  });
});

describe('argument rules: value shapes', () => {
  const p = policyWith([{ tool: 't__x', args: { path: '/data/*' } }]);
  const deny = (args: Record<string, unknown> | undefined) => {
    const d = p.checkToolCall('t__x', args);
    expect(d.decision, JSON.stringify(args)).toBe('deny');
    return d.decision === 'deny' ? d.refusal.message : '';
  };

  it('refuses arrays and objects, even when an element would match', () => {
    expect(deny({ path: ['/data/a'] })).toMatch(/not a string, number or boolean/);
    expect(deny({ path: { value: '/data/a' } })).toMatch(/not a string, number or boolean/);
    expect(deny({ path: null })).toMatch(/not a string, number or boolean/);
  });

  it('looks only at the named top-level argument: nested lookalikes and inherited names count as missing', () => {
    expect(deny({ nested: { path: '/data/a' } })).toMatch(/"path" is missing/);
    const q = policyWith([{ tool: 't__x', args: { constructor: '*' } }]);
    const d = q.checkToolCall('t__x', {});
    expect(d).toMatchObject({ decision: 'deny' });
    if (d.decision === 'deny') expect(d.refusal.message).toMatch(/"constructor" is missing/);
  });

  it('matches numbers and booleans by their JSON text', () => {
    const q = policyWith([{ tool: 't__n', args: { n: '4?', flag: 'true' } }]);
    expect(q.checkToolCall('t__n', { n: 42, flag: true })).toEqual({ decision: 'allow' });
    expect(q.checkToolCall('t__n', { n: 420, flag: true }).decision).toBe('deny');
  });

  it('refuses a value longer than the bound with a sentence saying so, and checks one at the bound', () => {
    const q = policyWith([{ tool: 't__x', args: { path: '*' } }, { tool: 't__y', args: { path: '/*/*.csv' } }]);
    const long = `/${'a'.repeat(MAX_GLOB_INPUT)}`;
    const d = q.checkToolCall('t__x', { path: long });
    expect(d).toMatchObject({ decision: 'deny', refusal: { reason: 'policy_denied', data: { argument: 'path' } } });
    if (d.decision === 'deny') expect(d.refusal.message).toContain(`${long.length} characters long, more than the ${MAX_GLOB_INPUT} a rule checks`);
    expect(q.checkToolCall('t__x', { path: long.slice(1) })).toEqual({ decision: 'allow' });
    expect(q.checkToolCall('t__y', { path: `/${'a/'.repeat(MAX_GLOB_INPUT / 2 - 1)}` }).decision).toBe('deny');
  });

  it('compares NFC text: a rule written in either form matches NFC values, NFD values are refused', () => {
    const nfc = 'caf\u00e9';
    const nfd = 'cafe\u0301';
    for (const glob of [`/${nfc}/*`, `/${nfd}/*`]) {
      const q = policyWith([{ tool: 't__x', args: { path: glob } }]);
      expect(q.checkToolCall('t__x', { path: `/${nfc}/menu` })).toEqual({ decision: 'allow' });
      const d = q.checkToolCall('t__x', { path: `/${nfd}/menu` });
      expect(d.decision).toBe('deny');
      if (d.decision === 'deny') expect(d.refusal.message).toMatch(/not NFC-normalized/);
    }
  });
});

describe('names beyond the bound', () => {
  it('are hidden, whatever the allow globs', () => {
    const long = `a${'b'.repeat(MAX_NAME_LENGTH)}`;
    for (const allow of [['*'], ['a*']]) {
      const p = policyWith([], allow);
      expect(p.canSeeTool(long)).toBe(false);
      expect(p.checkToolCall(long, {})).toEqual({ decision: 'hidden' });
      expect(p.canSeePrompt(long)).toBe(false);
      expect(p.canSeeTool(long.slice(0, MAX_NAME_LENGTH))).toBe(true);
    }
  });
});

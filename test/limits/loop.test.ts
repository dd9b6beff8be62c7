import { describe, expect, it } from 'vitest';
import { LoopDetector, callKey, canonicalJson } from '../../src/limits/loop.js';
import { FakeClock } from './helpers.js';
import { embedded } from '../helpers/sync.js';

const settings = { sameCall: 3, windowSeconds: 60 };

describe('canonical arguments', () => {
  it('ignores key order at every level and whitespace of the JSON text', () => {
    const a = JSON.parse('{"path":"/tmp/x","opts":{"encoding":"utf8","limit":10},"list":[{"b":1,"a":2}]}') as object;
    const b = JSON.parse(`{
      "list" : [ { "a": 2, "b": 1 } ],
      "opts": { "limit": 10,   "encoding": "utf8" },
      "path": "/tmp/x"
    }`) as object;
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(callKey('fs__read', a)).toBe(callKey('fs__read', b));
  });

  it('keeps array order, string contents and the tool name significant', () => {
    expect(callKey('t', { l: [1, 2] })).not.toBe(callKey('t', { l: [2, 1] }));
    expect(callKey('t', { s: 'a b' })).not.toBe(callKey('t', { s: 'a  b' }));
    expect(callKey('t1', { x: 1 })).not.toBe(callKey('t2', { x: 1 }));
    expect(callKey('t', { x: 1, y: undefined })).toBe(callKey('t', { x: 1 }));
    expect(callKey('t', undefined)).toBe(callKey('t', {}));
  });

  it('a short call is its own key, with no hash to compute; a long one is hashed to a fixed size', () => {
    expect(callKey('bench__add', { b: 3, a: 2 })).toBe('bench__add\u0000{"a":2,"b":3}');
    const long = callKey('t', { text: 'x'.repeat(10_000) });
    expect(long).toHaveLength(44);
    // A text key always holds the separator and a hash never does, so the two kinds of key cannot meet.
    expect(long).not.toContain('\u0000');
    expect(callKey('t', { text: 'x'.repeat(10_000) })).toBe(long);
    expect(callKey('t', { text: `${'x'.repeat(9_999)}y` })).not.toBe(long);
    // Either side of the length where hashing starts, different calls keep different keys.
    const near = Array.from({ length: 8 }, (_, i) => callKey('t', { s: 'y'.repeat(50 + i) }));
    expect(new Set(near).size).toBe(near.length);
  });
});

/** The sorting writer every key must stay equal to (loop histories are shared by replicas and kept across restarts). */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    parts.push(`${JSON.stringify(k)}:${reference(v)}`);
  }
  return `{${parts.join(',')}}`;
}

describe('canonical arguments: the text of sorted and unsorted inputs alike', () => {
  const deep: Record<string, unknown> = {};
  let cur = deep;
  for (let i = 0; i < 40; i++) cur = (cur.a = {}) as Record<string, unknown>;
  class Point {
    constructor(readonly y: number, readonly x: number) {}
  }
  const cases: unknown[] = [
    {},
    { a: 1 },
    { a: 1, b: 'two', c: [true, false, null], d: { e: 1.5, f: -0, g: 1e21 } },
    { b: 1, a: 2 },
    { 2: 'x', 10: 'y' },
    { 10: 'y', a: 1 },
    { a: 'quote " and \\ and \u2028 and \ud800' },
    { a: [1, undefined, () => 1, Symbol('s')] },
    { a: undefined, b: 1 },
    { a: Number.NaN, b: Number.POSITIVE_INFINITY },
    { a: new Date(0) },
    { a: { toJSON: () => 'x', b: 1 } },
    { a: new Point(1, 2) },
    Object.assign(Object.create(null) as object, { a: 1, b: 2 }),
    Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
    [3, 1, { z: 1, y: 2 }],
    'text',
    42,
    null,
    deep,
    { 'a-b': 1, a: 2, A: 3, 'a b': 4, é: 5 },
  ];
  it('writes exactly what the sorting writer writes, for every shape', () => {
    for (const c of cases) expect(canonicalJson(c)).toBe(reference(c));
  });
});

describe('LoopDetector: same call', () => {
  it('allows sameCall identical calls in the window and trips on the next, whatever the key order', () => {
    const d = embedded(new LoopDetector({ now: new FakeClock().now }));
    expect(d.check('wf', 'fs__read', { a: 1, b: 2 }, settings)).toBeUndefined();
    expect(d.check('wf', 'fs__read', { b: 2, a: 1 }, settings)).toBeUndefined();
    expect(d.check('wf', 'fs__read', { a: 1, b: 2 }, settings)).toBeUndefined();
    const trip = d.check('wf', 'fs__read', { b: 2, a: 1 }, settings);
    expect(trip).toMatchObject({ kind: 'sameCall', count: 4, windowSeconds: 60, call: { tool: 'fs__read', args: { b: 2, a: 1 } } });
  });

  it('counts only calls inside the window', () => {
    const clock = new FakeClock();
    const d = embedded(new LoopDetector({ now: clock.now }));
    for (let i = 0; i < 3; i++) {
      expect(d.check('wf', 't', { q: 1 }, settings)).toBeUndefined();
      clock.advance(25_000);
    }
    // The first call is now 75 s old: only two remain in the window.
    expect(d.check('wf', 't', { q: 1 }, settings)).toBeUndefined();
    expect(d.check('wf', 't', { q: 1 }, settings)?.kind).toBe('sameCall');
  });

  it('keeps different arguments and different workflows apart', () => {
    const d = embedded(new LoopDetector({ now: new FakeClock().now }));
    for (let i = 0; i < 10; i++) expect(d.check('wf', 't', { page: i }, settings)).toBeUndefined();
    for (let i = 0; i < 3; i++) {
      expect(d.check('wf-a', 't', {}, settings)).toBeUndefined();
      expect(d.check('wf-b', 't', {}, settings)).toBeUndefined();
    }
  });

  it('reset forgets the history', () => {
    const d = embedded(new LoopDetector({ now: new FakeClock().now }));
    for (let i = 0; i < 3; i++) d.check('wf', 't', {}, settings);
    expect(d.check('wf', 't', {}, settings)).toBeDefined();
    d.reset('wf');
    expect(d.check('wf', 't', {}, settings)).toBeUndefined();
  });
});

describe('LoopDetector: cycles', () => {
  const tight = { sameCall: 10, windowSeconds: 60, cycle: 2 };

  it('trips on an A,B,A,B,… cycle repeated more than `cycle` times', () => {
    const d = embedded(new LoopDetector({ now: new FakeClock().now }));
    const seq: Array<[string, Record<string, unknown>]> = [
      ['fs__list', { dir: '/' }],
      ['fs__read', { path: '/a' }],
    ];
    // Two full repetitions are allowed…
    for (let i = 0; i < 4; i++) expect(d.check('wf', ...seq[i % 2]!, tight)).toBeUndefined();
    // …the third completes on its second call.
    expect(d.check('wf', ...seq[0]!, tight)).toBeUndefined();
    const trip = d.check('wf', ...seq[1]!, tight);
    expect(trip).toMatchObject({ kind: 'cycle', count: 3, windowSeconds: 60 });
    expect(trip?.pattern).toEqual([
      { tool: 'fs__list', args: { dir: '/' } },
      { tool: 'fs__read', args: { path: '/a' } },
    ]);
  });

  it('trips on an A,B,C,A,B,C,… cycle', () => {
    const d = embedded(new LoopDetector({ now: new FakeClock().now }));
    const tools = ['search', 'fetch', 'summarize'];
    const results = Array.from({ length: 9 }, (_, i) => d.check('wf', tools[i % 3]!, { i: i % 3 }, tight));
    expect(results.slice(0, 8).every((r) => r === undefined)).toBe(true);
    expect(results[8]).toMatchObject({ kind: 'cycle', count: 3 });
    expect(results[8]?.pattern?.map((c) => c.tool)).toEqual(['search', 'fetch', 'summarize']);
  });

  it('does not see a cycle when the pattern is broken or spread beyond the window', () => {
    const clock = new FakeClock();
    const d = embedded(new LoopDetector({ now: clock.now }));
    for (const t of ['A', 'B', 'A', 'B', 'C', 'A', 'B', 'A']) expect(d.check('wf', t, {}, tight)).toBeUndefined();
    const slow = embedded(new LoopDetector({ now: clock.now }));
    for (let i = 0; i < 12; i++) {
      expect(slow.check('wf', i % 2 ? 'B' : 'A', {}, { ...tight, sameCall: 100 })).toBeUndefined();
      clock.advance(15_000);
    }
  });

  it('defaults `cycle` to sameCall', () => {
    const d = embedded(new LoopDetector({ now: new FakeClock().now }));
    // With sameCall 3, A appears a 4th time at call 7 (same-call trip) before the cycle completes its 4th round.
    const out = Array.from({ length: 7 }, (_, i) => d.check('wf', i % 2 ? 'B' : 'A', {}, { sameCall: 3, windowSeconds: 60 }));
    expect(out.slice(0, 6).every((r) => r === undefined)).toBe(true);
    expect(out[6]?.kind).toBe('sameCall');
  });
});

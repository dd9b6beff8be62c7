// A session's calls in flight by request id: one held without a Map, more beside it, each found, replaced and removed
// by its own id, whatever the order.
import { describe, expect, it } from 'vitest';
import { InFlightCalls } from '../../src/gateway/client-session.js';

const call = (name: string) => ({ name, abort: () => {} });

describe('calls in flight', () => {
  it('keeps each call under its own id, and forgets only the one removed', () => {
    const calls = new InFlightCalls();
    const [a, b, c] = [call('a'), call('b'), call('c')];
    calls.set(1, a).set('two', b).set(3, c);
    expect(calls.size).toBe(3);
    expect([calls.get(1), calls.get('two'), calls.get(3), calls.get(4)]).toEqual([a, b, c, undefined]);
    expect(calls.delete(1)).toBe(true);
    expect(calls.delete(1)).toBe(false);
    expect(calls.get(1)).toBeUndefined();
    // The slot freed by the first call takes the next one; the others stay where they are.
    const d = call('d');
    calls.set(4, d);
    expect(new Set(calls.values())).toEqual(new Set([b, c, d]));
    expect(calls.values()).toHaveLength(3);
    expect(calls.delete('two') && calls.delete(3) && calls.delete(4)).toBe(true);
    expect(calls.size).toBe(0);
    expect(calls.values()).toEqual([]);
  });

  it('replaces a call set again under the same id, wherever it is held', () => {
    const calls = new InFlightCalls();
    calls.set(1, call('a')).set(2, call('b'));
    calls.delete(1);
    const b2 = call('b2');
    calls.set(2, b2);
    expect(calls.size).toBe(1);
    expect(calls.get(2)).toBe(b2);
    expect(calls.delete(2)).toBe(true);
    expect(calls.get(2)).toBeUndefined();
    expect(calls.size).toBe(0);
  });
});

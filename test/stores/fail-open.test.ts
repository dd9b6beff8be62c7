/** failMode open: Redis-backed stores admit a call Redis cannot serve, and fail it on any other error. */
import { describe, expect, it } from 'vitest';
import { failOpenCounters, failOpenLiveChildren, failOpenLoopHistory, failOpenSlices } from '../../src/stores/fail-open.js';
import { MemoryLiveChildren } from '../../src/stores/memory/live-children.js';
import { MemoryCounterStore } from '../../src/stores/memory/counters.js';
import { MemorySlices } from '../../src/stores/memory/delegation.js';
import { MemoryLoopHistory } from '../../src/stores/memory/loop-history.js';
import type { CounterStore, Reservation } from '../../src/stores/counters.js';

class Unreachable extends Error {}
const unreachable = (err: unknown) => err instanceof Unreachable;
const r: Reservation = { workflowId: 'w', agentId: 'a', amounts: { calls: 1 }, limits: [{ subject: 'workflow', window: 'total', dimension: 'calls', max: 0, mode: 'reserve' }] };

/** Every method of `store` answers with a rejected promise of `err`. */
function failing<T extends object>(store: T, err: Error): T {
  return new Proxy(store, { get: (t, k) => (typeof (t as Record<PropertyKey, unknown>)[k] === 'function' ? () => Promise.reject(err) : (t as Record<PropertyKey, unknown>)[k]) });
}

describe('fail-open stores', () => {
  it('pass answers through while Redis answers (a limit of 0 still refuses)', async () => {
    const c = failOpenCounters(new MemoryCounterStore({}), unreachable);
    expect(await c.reserve(r)).toMatchObject({ used: 0, limit: { max: 0 } });
  });

  it('admit and count nothing while Redis is unreachable', async () => {
    const c = failOpenCounters(failing<CounterStore>(new MemoryCounterStore({}), new Unreachable('down')), unreachable);
    expect(await c.check(r)).toBeUndefined();
    expect(await c.reserve(r)).toBeUndefined();
    await expect(Promise.resolve(c.release(r))).resolves.toBeUndefined();
    const s = failOpenSlices(failing(new MemorySlices(), new Unreachable('down')), unreachable);
    expect(await s.take([{ jti: 'j', max: 0, expiresAt: Date.now() + 60_000 }])).toBeUndefined();
    expect(await s.used('j')).toBe(0);
  });

  it('admit a sub-agent uncounted while Redis is unreachable, and pass a refusal through while it answers', async () => {
    const down = failOpenLiveChildren(failing(new MemoryLiveChildren(), new Unreachable('down')), unreachable);
    expect(await down.reserve('p', 'c1', Date.now() + 60_000, 0)).toBeUndefined();
    expect(await down.count('p')).toBe(0);
    await expect(Promise.resolve(down.remove('p', 'c1'))).resolves.toBeUndefined();
    const up = failOpenLiveChildren(new MemoryLiveChildren(), unreachable);
    expect(await up.reserve('p', 'c1', Date.now() + 60_000, 0)).toBe(0);
    const broken = failOpenLiveChildren(failing(new MemoryLiveChildren(), new TypeError('bad script')), unreachable);
    await expect(Promise.resolve(broken.reserve('p', 'c1', Date.now() + 60_000, 1))).rejects.toThrow('bad script');
  });

  it('keep loop histories in memory while Redis is unreachable, so loops on this replica are still seen', async () => {
    const h = failOpenLoopHistory(failing(new MemoryLoopHistory(), new Unreachable('down')), unreachable);
    const opened = await h.open('wf');
    opened.recent.push({ key: 'k', call: { tool: 't', args: {} }, at: 1 });
    expect((await h.get('wf'))?.recent).toHaveLength(1);
  });

  it('fail the call on any other error: a bug is not an outage', async () => {
    const c = failOpenCounters(failing<CounterStore>(new MemoryCounterStore({}), new TypeError('bad script')), unreachable);
    await expect(Promise.resolve(c.reserve(r))).rejects.toThrow('bad script');
  });
});

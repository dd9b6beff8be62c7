// The LoopHistoryStore contract, and the loop detector over it: the same decisions whether the store answers
// synchronously (memory) or with promises (as a shared store will), and forgetLast / reset go through the store.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LoopDetector, type LoopSettings } from '../../src/limits/loop.js';
import type { LoopHistory, LoopHistoryStore } from '../../src/stores/loop-history.js';
import { MemoryLoopHistory } from '../../src/stores/memory/loop-history.js';
import { RedisLoopHistoryStore } from '../../src/stores/redis/loop-history.js';
import { stopTestRedis } from '../helpers/shared-stores.js';
import { storeDir, removeStoreDirs, TestClock } from './factories.js';
import { closeRedisClients, redisClientFor, redisReady, redisSkip } from './redis-factories.js';

/** A store answering every call with a promise, writing a copy back on `changed` (nothing shared by reference). */
class PromisedLoopHistory implements LoopHistoryStore {
  private readonly saved = new Map<string, string>();
  writes = 0;
  private decode(json: string): LoopHistory {
    const raw = JSON.parse(json) as { byKey: Array<[string, number[]]>; recent: LoopHistory['recent']; sweepAt: number };
    return { byKey: new Map(raw.byKey), recent: raw.recent, sweepAt: raw.sweepAt };
  }
  async get(id: string): Promise<LoopHistory | undefined> {
    const json = this.saved.get(id);
    return json === undefined ? undefined : this.decode(json);
  }
  async open(id: string): Promise<LoopHistory> {
    return (await this.get(id)) ?? { byKey: new Map(), recent: [], sweepAt: 512 };
  }
  async changed(id: string, h: LoopHistory): Promise<void> {
    this.writes++;
    this.saved.set(id, JSON.stringify({ byKey: [...h.byKey], recent: h.recent, sweepAt: h.sweepAt }));
  }
  async delete(id: string): Promise<void> {
    this.saved.delete(id);
  }
}

const factories = [
  { name: 'memory', make: (): LoopHistoryStore => new MemoryLoopHistory() },
  { name: 'promise-answering', make: (): LoopHistoryStore => new PromisedLoopHistory() },
  ...(redisSkip ? [] : [{ name: 'redis', make: (): LoopHistoryStore => new RedisLoopHistoryStore({ client: redisClientFor(storeDir()) }) }]),
];

beforeAll(redisReady);
afterEach(removeStoreDirs);
afterEach(closeRedisClients);
afterAll(stopTestRedis);

const SAME: LoopSettings = { sameCall: 2, windowSeconds: 60 };
const CYCLE: LoopSettings = { sameCall: 10, windowSeconds: 60, cycle: 2 };

describe.each(factories)('LoopHistoryStore contract: $name', (f) => {
  it('opens an empty history for a new workflow and hands back what was changed', async () => {
    const store = f.make();
    expect(await store.get('wf')).toBeUndefined();
    const h = await store.open('wf');
    expect(h.recent).toEqual([]);
    h.recent.push({ key: 'k', call: { tool: 't', args: {} }, at: 1 });
    h.byKey.set('k', [1]);
    await store.changed('wf', h);
    expect((await store.get('wf'))?.byKey.get('k')).toEqual([1]);
    await store.delete('wf');
    expect(await store.get('wf')).toBeUndefined();
  });

  it('the detector trips a same-call loop, and the refused call is not recorded', async () => {
    const clock = new TestClock();
    const d = new LoopDetector({ now: clock.now, store: f.make() });
    expect(await d.check('wf', 'fs__read', { a: 1 }, SAME)).toBeUndefined();
    expect(await d.check('wf', 'fs__read', { a: 1 }, SAME)).toBeUndefined();
    expect((await d.wouldTrip('wf', 'fs__read', { a: 1 }, SAME))?.count).toBe(3);
    expect((await d.check('wf', 'fs__read', { a: 1 }, SAME))?.kind).toBe('sameCall');
    clock.t += 61_000;
    expect(await d.check('wf', 'fs__read', { a: 1 }, SAME)).toBeUndefined();
  });

  it('the detector sees a cycle of two calls, and forgetLast takes back the last one', async () => {
    const d = new LoopDetector({ now: new TestClock().now, store: f.make() });
    for (const tool of ['a', 'b', 'a', 'b', 'a']) expect(await d.check('wf', tool, {}, CYCLE)).toBeUndefined();
    await d.forgetLast('wf', 'a', {});
    expect(await d.check('wf', 'a', {}, CYCLE)).toBeUndefined();
    expect((await d.check('wf', 'b', {}, CYCLE))?.pattern?.map((c) => c.tool)).toEqual(['a', 'b']);
  });

  it('reset forgets a workflow and only that one', async () => {
    const d = new LoopDetector({ now: new TestClock().now, store: f.make() });
    for (const wf of ['one', 'two']) for (let i = 0; i < 2; i++) await d.check(wf, 't', {}, SAME);
    await d.reset('one');
    expect(await d.wouldTrip('one', 't', {}, SAME)).toBeUndefined();
    expect(await d.wouldTrip('two', 't', {}, SAME)).toBeDefined();
  });
});

it('over a promise-answering store, every recorded call is written back', async () => {
  const store = new PromisedLoopHistory();
  const d = new LoopDetector({ now: new TestClock().now, store });
  expect(d.check('wf', 't', {}, SAME)).toBeInstanceOf(Promise);
  await d.check('wf', 't', { n: 2 }, SAME);
  expect(store.writes).toBeGreaterThanOrEqual(1);
});

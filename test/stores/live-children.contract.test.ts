// The LiveChildrenStore contract (delegation.maxChildren), against memory and Redis: slots reserved atomically,
// lapsing at the child's expiry, freed by remove and removeNode; over Redis, two replicas share one count.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LiveChildrenStore } from '../../src/stores/live-children.js';
import { MemoryLiveChildren } from '../../src/stores/memory/live-children.js';
import { RedisLiveChildren } from '../../src/stores/redis/live-children.js';
import { stopTestRedis } from '../helpers/shared-stores.js';
import { removeStoreDirs, storeDir, TestClock, type SyncStoreFactory } from './factories.js';
import { closeRedisClients, redisClientFor, redisReady, redisSkip } from './redis-factories.js';

const factories: Array<SyncStoreFactory<LiveChildrenStore>> = [
  { name: 'memory', durable: false, open: (_dir, clock) => new MemoryLiveChildren({ now: clock.now }) },
  ...(redisSkip ? [] : [{ name: 'redis', durable: true, open: (dir: string, clock: TestClock) => new RedisLiveChildren({ client: redisClientFor(dir), now: clock.now }) }]),
];

beforeAll(redisReady);
afterEach(removeStoreDirs);
afterEach(closeRedisClients);
afterAll(stopTestRedis);

const MIN = 60_000;

describe.each(factories)('LiveChildrenStore contract: $name', (f) => {
  const open = () => {
    const clock = new TestClock();
    const dir = storeDir();
    return { clock, dir, store: f.open(dir, clock) };
  };

  it('reserves up to max live children, then answers the live count', async () => {
    const { store, clock } = open();
    expect(await store.reserve('p', 'c1', clock.t + MIN, 2)).toBeUndefined();
    expect(await store.reserve('p', 'c2', clock.t + MIN, 2)).toBeUndefined();
    expect(await store.reserve('p', 'c3', clock.t + MIN, 2)).toBe(2);
    // The same child again is not a second child.
    expect(await store.reserve('p', 'c1', clock.t + 2 * MIN, 2)).toBeUndefined();
    expect(await store.count('p')).toBe(2);
    expect(await store.count('other')).toBe(0);
  });

  it('a child lapses at its expiry; remove and removeNode free slots', async () => {
    const { store, clock } = open();
    await store.reserve('p', 'short', clock.t + 1000, 2);
    await store.reserve('p', 'long', clock.t + MIN, 2);
    expect(await store.reserve('p', 'x', clock.t + MIN, 2)).toBe(2);
    clock.t += 1000;
    expect(await store.count('p')).toBe(1);
    expect(await store.reserve('p', 'x', clock.t + MIN, 2)).toBeUndefined();
    await store.remove('p', 'x');
    expect(await store.count('p')).toBe(1);
    await store.removeNode('p');
    expect(await store.count('p')).toBe(0);
    expect(await store.reserve('p', 'unbounded', Number.POSITIVE_INFINITY, 1)).toBeUndefined();
    clock.t += 365 * 86_400_000;
    expect(await store.count('p')).toBe(1);
  });

  it('of 30 concurrent reservations for a parent with maxChildren 10, exactly 10 succeed', async () => {
    const { store, clock, dir } = open();
    // A durable (shared) store is opened twice on the same place: two replicas minting for one parent.
    const other = f.durable ? f.open(dir, clock) : store;
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? store : other).reserve('p', `c${i}`, clock.t + MIN, 10)));
    expect(results.filter((r) => r === undefined)).toHaveLength(10);
    expect(await store.count('p')).toBe(10);
  });

  it('refuses a max that is not a number, recording nothing', async () => {
    const { store, clock } = open();
    await expect(async () => store.reserve('p', 'c', clock.t + MIN, Number.NaN)).rejects.toThrow(/maxChildren must be a finite number/);
    expect(await store.count('p')).toBe(0);
  });
});

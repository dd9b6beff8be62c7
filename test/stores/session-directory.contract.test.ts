// The SessionDirectory contract against memory and Redis: a claim names its replica and principal, only the holder
// releases it, records and heartbeats lapse with their TTL, and a claim again renews (or rewrites a lapsed) record.
// Redis down: commands fail at once rather than wait, and the directory reports it and recovers without a restart.
// A directory on a replica's shared RedisClient keeps the same keys and leaves the client open when it closes.
import { afterAll, describe, expect, it } from 'vitest';
import { MemorySessionDirectory } from '../../src/stores/memory/session-directory.js';
import pino from 'pino';
import { openRedis } from '../../src/stores/redis/client.js';
import { RedisSessionDirectory } from '../../src/stores/redis/session-directory.js';
import type { SessionDirectory } from '../../src/stores/sessions.js';
import { sharedStoresUnavailable, startRedis, stopTestRedis, testRedis } from '../helpers/shared-stores.js';
import { waitFor } from '../helpers/gateway.js';
import { TestClock } from './factories.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`Redis session directory skipped: ${skip}`);

interface Pair {
  a: SessionDirectory;
  b: SessionDirectory;
  /** A TTL short enough to watch lapse, and how to wait until it has. */
  ttl: number;
  lapse(check: () => Promise<boolean>): Promise<void>;
  close(): Promise<void>;
}

/** Redis lapses keys on its own clock: a short TTL, polled until the record is gone. */
const REDIS_TTL_MS = 200;
const redisLapse = async (check: () => Promise<boolean>): Promise<void> => {
  await waitFor(check, { timeoutMs: 5000, intervalMs: 50, what: 'the TTL to lapse' });
};

const factories: Array<{ name: string; skip?: string; open(): Promise<Pair> }> = [
  {
    name: 'memory',
    open: async () => {
      const clock = new TestClock();
      const a = new MemorySessionDirectory('replica-a', clock.now);
      const b = new MemorySessionDirectory('replica-b', clock.now, a);
      return {
        a,
        b,
        ttl: 1000,
        lapse: async (check) => {
          clock.t += 1001;
          expect(await check()).toBe(true);
        },
        close: async () => {},
      };
    },
  },
  {
    name: 'redis',
    skip,
    open: async () => {
      const r = await testRedis();
      const a = new RedisSessionDirectory({ url: r.url, keyPrefix: r.keyPrefix, replicaId: 'replica-a' });
      const b = new RedisSessionDirectory({ url: r.url, keyPrefix: r.keyPrefix, replicaId: 'replica-b' });
      expect(await a.ready()).toBe(true);
      expect(await b.ready()).toBe(true);
      return {
        a,
        b,
        ttl: REDIS_TTL_MS,
        lapse: redisLapse,
        close: async () => {
          await a.close();
          await b.close();
        },
      };
    },
  },
  {
    // A replica's directory on the RedisClient its other stores use, beside one on a connection of its own: one key layout.
    name: 'redis on a shared client',
    skip,
    open: async () => {
      const r = await testRedis();
      const client = openRedis({ url: r.url, keyPrefix: r.keyPrefix, log: pino({ level: 'silent' }) });
      await client.ready();
      const a = new RedisSessionDirectory({ client, replicaId: 'replica-a' });
      const b = new RedisSessionDirectory({ url: r.url, keyPrefix: r.keyPrefix, replicaId: 'replica-b' });
      expect(await a.ready()).toBe(true);
      expect(await b.ready()).toBe(true);
      return {
        a,
        b,
        ttl: REDIS_TTL_MS,
        lapse: redisLapse,
        close: async () => {
          await a.close();
          // Closing the directory leaves the shared client to its opener, still serving the other stores.
          expect(await client.call((redis) => redis.ping())).toBe('PONG');
          await client.close();
          await b.close();
        },
      };
    },
  },
];

afterAll(stopTestRedis);

const S1 = '11111111-1111-4111-8111-111111111111';
const S2 = '22222222-2222-4222-8222-222222222222';

describe.each(factories)('SessionDirectory contract: $name', (f) => {
  it.skipIf(f.skip)('a claim is seen by every replica with its holder and principal; unknown ids have no record', async () => {
    const { a, b, close } = await f.open();
    await a.claim([{ sessionId: S1, principal: 'p-alice' }], 60_000);
    const seen = await b.lookup(S1);
    expect(seen).toMatchObject({ replica: 'replica-a', principal: 'p-alice' });
    expect(await b.lookup(S2)).toBeUndefined();
    await close();
  });

  it.skipIf(f.skip)('only the holder releases a record', async () => {
    const { a, b, close } = await f.open();
    await a.claim([{ sessionId: S1, principal: 'p-alice' }, { sessionId: S2, principal: 'p-bob' }], 60_000);
    await b.release(S1);
    expect(await a.lookup(S1)).toMatchObject({ replica: 'replica-a' });
    await a.release(S1);
    expect(await b.lookup(S1)).toBeUndefined();
    expect(await b.lookup(S2)).toMatchObject({ principal: 'p-bob' });
    await close();
  });

  it.skipIf(f.skip)('heartbeats name where a replica is reached until they lapse or it withdraws', async () => {
    const { a, b, ttl, lapse, close } = await f.open();
    await a.advertise('http://10.0.0.1:8080', ttl);
    await b.advertise('http://10.0.0.2:8080', 60_000);
    expect(await b.addressOf('replica-a')).toBe('http://10.0.0.1:8080');
    expect(await a.addressOf('replica-c')).toBeUndefined();
    await lapse(async () => (await b.addressOf('replica-a')) === undefined);
    expect(await a.addressOf('replica-b')).toBe('http://10.0.0.2:8080');
    await b.withdraw();
    expect(await a.addressOf('replica-b')).toBeUndefined();
    await close();
  });

  it.skipIf(f.skip)('a record lapses with its TTL; claiming it again writes it back', async () => {
    const { a, b, ttl, lapse, close } = await f.open();
    await a.claim([{ sessionId: S1, principal: 'p-alice' }], ttl);
    await lapse(async () => (await b.lookup(S1)) === undefined);
    await a.claim([{ sessionId: S1, principal: 'p-alice' }], 60_000);
    expect(await b.lookup(S1)).toMatchObject({ replica: 'replica-a', principal: 'p-alice' });
    await close();
  });
});

describe.skipIf(skip)('Redis session directory while Redis is down', () => {
  it('fails fast, reports unhealthy, and works again once Redis is back without a new client', async () => {
    const server = await startRedis();
    const changes: boolean[] = [];
    const dir = new RedisSessionDirectory({ url: server.url, replicaId: 'replica-a', onHealth: (h) => changes.push(h.ok) });
    try {
      expect(await dir.ready()).toBe(true);
      expect(dir.health()).toEqual({ ok: true });
      await server.stop();
      await waitFor(() => !dir.health().ok, { what: 'the directory to notice Redis is gone' });
      expect(dir.health().error).toBeTruthy();
      const started = Date.now();
      await expect(Promise.resolve(dir.lookup(S1))).rejects.toThrow();
      await expect(Promise.resolve(dir.claim([{ sessionId: S1, principal: 'p' }], 1000))).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2500);
      await server.start();
      await waitFor(() => dir.health().ok, { timeoutMs: 15_000, what: 'the directory to reconnect' });
      await dir.claim([{ sessionId: S1, principal: 'p' }], 60_000);
      expect(await dir.lookup(S1)).toMatchObject({ replica: 'replica-a' });
      expect(changes).toEqual([true, false, true]);
    } finally {
      await dir.close();
      await server.close();
    }
  }, 30_000);
});

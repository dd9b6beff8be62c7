// What the Redis stores add beyond their contract suites: slices kept across a reopen and forgotten once expired,
// bounded loop histories with a TTL, bad input refused, and a client that never reached Redis failing fast.
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LoopHistory } from '../../src/stores/loop-history.js';
import { openRedis, RedisUnavailableError, type RedisClient } from '../../src/stores/redis/client.js';
import { decode, encode, RedisLoopHistoryStore } from '../../src/stores/redis/loop-history.js';
import { RedisSliceStore } from '../../src/stores/redis/slices.js';
import { freePort, sharedStoresUnavailable, stopTestRedis, testRedis, type TestRedis } from '../helpers/shared-stores.js';
import { TestClock } from './factories.js';

const skip = sharedStoresUnavailable();
if (skip) console.warn(`Redis store tests skipped: ${skip}`);

const quiet = pino({ level: 'silent' });
const clients: RedisClient[] = [];
let redis: TestRedis;
const client = (url = redis.url, log = quiet): RedisClient => {
  const c = openRedis({ url, keyPrefix: redis?.keyPrefix ?? 'sy:', log });
  clients.push(c);
  return c;
};

const HOUR = 3_600_000;

describe.skipIf(skip)('Redis stores', () => {
  beforeAll(async () => {
    redis = await testRedis();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    redis = await testRedis();
  });
  afterAll(stopTestRedis);

  it('slices survive a reopen from another client, and an expired slice counts as unused', async () => {
    const clock = new TestClock();
    const first = new RedisSliceStore({ client: client(), now: clock.now });
    const slice = { jti: 'a', max: 2, expiresAt: clock.t + HOUR };
    const short = { jti: 'short', max: 5, expiresAt: clock.t + 1000 };
    expect(await first.take([slice, short])).toBeUndefined();
    expect(await first.take([slice])).toBeUndefined();
    clock.t += 2000;
    const again = new RedisSliceStore({ client: client(), now: clock.now });
    expect(await again.used('a')).toBe(2);
    expect(await again.take([slice])).toEqual({ slice, used: 2 });
    expect(await again.used('short')).toBe(0);
    expect(await again.take([{ ...short, expiresAt: clock.t + HOUR }])).toBeUndefined();
    expect(await again.used('short')).toBe(1);
    await again.giveBack([slice, slice, slice]);
    expect(await again.used('a')).toBe(0);
  });

  it('a slice with a budget or expiry that is not a number is refused, taking nothing', async () => {
    const clock = new TestClock();
    const slices = new RedisSliceStore({ client: client(), now: clock.now });
    const good = { jti: 'g', max: 3, expiresAt: clock.t + HOUR };
    await expect(slices.take([good, { jti: 'bad', max: Number.NaN, expiresAt: clock.t + HOUR }])).rejects.toThrow(/bad: max and expiresAt must be finite numbers; nothing was taken/);
    expect(await slices.used('g')).toBe(0);
  });

  it('a loop history is written compactly, bounded in size, and expires', async () => {
    const c = client();
    const store = new RedisLoopHistoryStore({ client: c, ttlMs: 5_000, maxBytes: 4096 });
    const h = await store.open('wf');
    for (let i = 0; i < 100; i++) {
      h.recent.push({ key: `k${i}`, call: { tool: 'fs__write', args: { text: 'x'.repeat(200), i } }, at: i });
      h.byKey.set(`k${i}`, [i]);
    }
    await store.changed('wf', h);
    const raw = await c.call((r) => r.get(c.key('loop:wf')));
    expect(Buffer.byteLength(raw!)).toBeLessThanOrEqual(4096);
    const back = (await store.get('wf'))!;
    expect(back.recent.length).toBeGreaterThan(0);
    expect(back.recent.length).toBeLessThan(100);
    // The newest calls are the ones kept, in order.
    expect(back.recent[back.recent.length - 1]).toEqual(h.recent[99]);
    expect(back.byKey.get('k99')).toEqual([99]);
    const ttl = await c.call((r) => r.pttl(c.key('loop:wf')));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
  });

  it('keeps byKey within the bound once there are no calls left to drop', () => {
    const h: LoopHistory = { byKey: new Map(Array.from({ length: 400 }, (_, i) => [`key-${i}`, [i, i + 1]])), recent: [], sweepAt: 512 };
    const raw = encode(h, 2048);
    expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(2048);
    const back = decode(raw)!;
    expect(back.byKey.has('key-399')).toBe(true);
    expect(back.byKey.has('key-0')).toBe(false);
  });

  it('an unreadable stored history starts afresh instead of failing the call', async () => {
    const c = client();
    await c.call((r) => r.set(c.key('loop:broken'), '{not json'));
    const store = new RedisLoopHistoryStore({ client: c });
    expect(await store.get('broken')).toBeUndefined();
    expect((await store.open('broken')).recent).toEqual([]);
  });

  it('a Redis URL that is not one is refused at once, saying how to write it', () => {
    expect(() => openRedis({ url: 'localhost:6379', log: quiet })).toThrow(/must start with redis:\/\/ or rediss:\/\//);
    expect(() => openRedis({ url: 'not a url', log: quiet })).toThrow(/is not a URL; write it as redis:\/\/host:6379\/0/);
    expect(() => openRedis({ url: 'http://user:secret@host:6379', log: quiet })).toThrow(/not http:/);
  });

  it('a client that never reached Redis fails its calls within about a second, says why once, and is not healthy', async () => {
    const lines: Array<{ msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as { msg: string }) });
    const c = client(`redis://127.0.0.1:${await freePort()}/0`, log);
    const t0 = performance.now();
    await expect(c.call((r) => r.ping())).rejects.toThrow(RedisUnavailableError);
    expect(performance.now() - t0).toBeLessThan(2000);
    await expect(c.call((r) => r.ping())).rejects.toThrow(/unreachable \(.*ECONNREFUSED.*\); the call was not made/);
    expect(c.health()).toMatchObject({ ok: false, error: expect.stringMatching(/ECONNREFUSED/) });
    expect(lines.filter((l) => /unreachable/.test(l.msg))).toHaveLength(1);
  });
});

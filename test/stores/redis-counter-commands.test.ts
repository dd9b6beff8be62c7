// What a step costs Redis, counted by the server itself (INFO commandstats) on a throwaway redis-server of its own:
// a tool call is one script run of a handful of commands, a check alone writes nothing, and a window moving up or a
// held model call stays within a few more.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitCounters } from '../../src/limits/counters.js';
import { openRedis, type RedisClient } from '../../src/stores/redis/client.js';
import { RedisCounterStore } from '../../src/stores/redis/counters.js';
import { sharedStoresUnavailable, startRedis, type ThrowawayRedis } from '../helpers/shared-stores.js';
import { TestClock } from './factories.js';

const skip = sharedStoresUnavailable();
const LIMITS = { workflow: { toolCalls: 1000 }, perMinute: { toolCalls: 1000 }, perDay: { toolCalls: 1000 } };

async function commandStats(client: RedisClient): Promise<Map<string, number>> {
  const info = await client.redis.info('commandstats');
  return new Map([...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** Commands the scripts ran (not the script runs themselves, nor the test's own CONFIG). */
const innerOf = (stats: Map<string, number>): number => [...stats].filter(([c]) => c !== 'evalsha' && c !== 'config').reduce((n, [, k]) => n + k, 0);

describe.skipIf(skip)('Redis counters: commands per step', () => {
  let server: ThrowawayRedis;
  let client: RedisClient;
  beforeAll(async () => {
    server = await startRedis();
    client = openRedis({ url: server.url, log: pino({ level: 'silent' }) });
    await client.ready();
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  const stepsOf = (counters: LimitCounters, n: number, from: number) =>
    Array.from({ length: n }, (_, i) => ({ workflowId: `wf-${from + i}`, agentId: 'a', team: undefined, kind: 'tools/call' as const, agentLimits: LIMITS, teamLimits: undefined }));

  it('a tool call is one script run of at most 6 commands, and a check alone reads two hashes and writes nothing', async () => {
    const clock = new TestClock();
    const counters = new LimitCounters({ store: new RedisCounterStore({ client, now: clock.now }), now: clock.now });
    for (const s of stepsOf(counters, 1, 0)) expect(await counters.tryConsume(s)).toBeUndefined();

    await client.redis.config('RESETSTAT');
    for (const s of stepsOf(counters, 20, 1)) expect(await counters.tryConsume(s)).toBeUndefined();
    const reserved = await commandStats(client);
    expect(reserved.get('evalsha')).toBe(20);
    expect(innerOf(reserved)).toBeLessThanOrEqual(20 * 6);

    await client.redis.config('RESETSTAT');
    for (const s of stepsOf(counters, 10, 100)) expect(await counters.check(s)).toBeUndefined();
    const checked = await commandStats(client);
    expect(checked.get('evalsha')).toBe(10);
    expect([...checked.keys()].filter((c) => c !== 'evalsha' && c !== 'config').sort()).toEqual(['hmget']);
    expect(checked.get('hmget')).toBe(20);
    // A workflow only checked is not written; its first reservation starts it at the check's time.
    expect(await counters.workflowUsage('wf-100')).toBeUndefined();

    // A new second moves the windows up once (seven more commands), then steps are back to the usual count.
    clock.t += 1000;
    await client.redis.config('RESETSTAT');
    for (const s of stepsOf(counters, 10, 200)) expect(await counters.tryConsume(s)).toBeUndefined();
    const rolled = await commandStats(client);
    expect(rolled.get('evalsha')).toBe(10);
    expect(innerOf(rolled)).toBeLessThanOrEqual(10 * 6 + 7);
    expect((await counters.windowUsage('agent', 'a'))?.perMinute.toolCalls).toBe(31);
  });
});

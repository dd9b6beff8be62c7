// Two RedisCounterStores over one Redis acting as two replicas: the cases LiteLLM's users report for shared budgets
// (inflated counters, spend lost on concurrent resets, per-model budgets not shared), holds of a replica that died
// lapsing, and Redis going away and coming back under a store that is never rebuilt.
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LIMIT_DIMENSIONS, LimitCounters, type ConsumeRequest } from '../../src/limits/counters.js';
import type { CounterLimit, Reservation } from '../../src/stores/counters.js';
import { openRedis, RedisUnavailableError, type RedisClient } from '../../src/stores/redis/client.js';
import { RedisCounterStore } from '../../src/stores/redis/counters.js';
import { sharedStoresUnavailable, startRedis, stopTestRedis, testRedis, type TestRedis } from '../helpers/shared-stores.js';
import { TestClock } from './factories.js';

const skip = sharedStoresUnavailable();
if (skip) console.warn(`Redis replica tests skipped: ${skip}`);

const quiet = pino({ level: 'silent' });
const clients: RedisClient[] = [];
let redis: TestRedis;

function replica(clock: TestClock, keyPrefix = redis.keyPrefix, url = redis.url, log = quiet) {
  const client = openRedis({ url, keyPrefix, log });
  clients.push(client);
  return { client, store: new RedisCounterStore({ client, now: clock.now, dimensions: LIMIT_DIMENSIONS }) };
}

const toolCall = (limits: CounterLimit[], over: Partial<Reservation> = {}): Reservation => ({ workflowId: 'wf', agentId: 'a', team: 't', amounts: { calls: 1, toolCalls: 1 }, limits, ...over });

describe.skipIf(skip)('Redis counters shared by two replicas', () => {
  beforeAll(async () => {
    redis = await testRedis();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    redis = await testRedis(); // a fresh key prefix per test
  });
  afterAll(stopTestRedis);

  it('30 concurrent reservations from both against a shared limit of 10: exactly 10 admitted, counters exactly 10', async () => {
    const clock = new TestClock();
    const a = replica(clock);
    const b = replica(clock);
    const limits: CounterLimit[] = [{ subject: 'team', window: 'perDay', dimension: 'toolCalls', max: 10, mode: 'reserve' }];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).store.reserve(toolCall(limits, { workflowId: `wf-${i}`, agentId: `agent-${i % 3}` }))),
    );
    expect(results.filter((r) => r === undefined)).toHaveLength(10);
    expect(results.filter((r) => r !== undefined).every((r) => r!.used === 10)).toBe(true);
    expect((await a.store.windowTotals('team', 't'))?.perDay.toolCalls).toBe(10);
    expect((await b.store.windowTotals('team', 't'))?.perMinute.calls).toBe(10);
    let agents = 0;
    for (let i = 0; i < 3; i++) agents += (await b.store.windowTotals('agent', `agent-${i}`))?.perHour.toolCalls ?? 0;
    expect(agents).toBe(10);
    let workflows = 0;
    for (let i = 0; i < 30; i++) workflows += (await a.store.workflowTotals(`wf-${i}`))?.totals.toolCalls ?? 0;
    expect(workflows).toBe(10);
  });

  it('both roll a window over at once and no spend is lost', async () => {
    const clock = new TestClock();
    const a = replica(clock);
    const b = replica(clock);
    const keys = { workflowId: 'wf', agentId: 'a', team: 't' };
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).store.add(keys, { tokens: 10, costUsd: 0.01 })));
    clock.t += 61_000; // every perMinute bucket is now stale: the next calls on either replica roll the window
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).store.add(keys, { tokens: 1, costUsd: 0.25 })));
    const w = (await a.store.windowTotals('team', 't'))!;
    expect(w.perMinute.tokens).toBe(60);
    expect(w.perMinute.costUsd).toBe(15);
    expect(w.perHour.tokens).toBe(460);
    expect(w.perDay.costUsd).toBeCloseTo(15.4, 9);
    expect((await b.store.workflowTotals('wf'))?.totals.tokens).toBe(460);
  });

  it('a per-model dollar budget of an agent and a team token budget are one budget across replicas', async () => {
    const clock = new TestClock();
    const one = new LimitCounters({ store: replica(clock).store, now: clock.now });
    const two = new LimitCounters({ store: replica(clock).store, now: clock.now });
    const call = (i: number, agentId = 'coder'): ConsumeRequest => ({
      workflowId: `wf-${i}`,
      agentId,
      team: 'eng',
      kind: 'model/call',
      agentLimits: { perDay: { costUsd: 1 } },
      teamLimits: { perDay: { tokens: 2500 } },
      reserve: { tokens: 500, costUsd: 0.3 },
    });
    // Three calls of $0.30 fit the agent's $1 wherever they land; the fourth does not, on either replica.
    const first = call(1); // the guard settles the very request it reserved
    expect(await one.tryConsume(first)).toBeUndefined();
    expect(await two.tryConsume(call(2))).toBeUndefined();
    expect(await one.tryConsume(call(3))).toBeUndefined();
    expect(await two.tryConsume(call(4))).toMatchObject({ reason: 'budget_exceeded', data: { limit: 'perDay.costUsd' } });
    // A reconcile on one replica frees budget the other sees.
    await one.settle(first, { tokens: 100, costUsd: 0.05 });
    expect(await two.tryConsume(call(5))).toBeUndefined();
    // The team's tokens are shared too: other agents of the team fill them up from both replicas.
    expect(await one.tryConsume(call(6, 'writer'))).toBeUndefined();
    expect(await two.tryConsume(call(7, 'tester'))).toMatchObject({ data: { limit: 'team.perDay.tokens' } });
    expect((await one.windowUsage('team', 'eng'))?.perDay.tokens).toBe(100 + 500 * 4);
  });

  it('the hold of a replica that dies before reconciling lapses after its expiry and the others get the budget back', async () => {
    const clock = new TestClock();
    const dying = replica(clock);
    const survivor = replica(clock);
    const limits: CounterLimit[] = [{ subject: 'agent', window: 'perDay', dimension: 'tokens', max: 1000, mode: 'reserve' }];
    const model = (id: string): Reservation => ({ workflowId: `wf-${id}`, agentId: 'a', team: 't', amounts: { calls: 1, tokens: 800, costUsd: 0.4 }, limits, hold: { id, ms: 30_000 } });
    expect(await dying.store.reserve(model('h-dead'))).toBeUndefined();
    await dying.client.close(); // gone without settle or release
    expect((await survivor.store.reserve(model('h-1')))?.used).toBe(800);
    clock.t += 29_999;
    expect((await survivor.store.reserve(model('h-1')))?.used).toBe(800);
    clock.t += 1;
    expect(await survivor.store.reserve(model('h-1'))).toBeUndefined();
    const w = (await survivor.store.windowTotals('agent', 'a'))!;
    expect(w.perDay).toEqual({ calls: 1, toolCalls: 0, tokens: 800, costUsd: 0.4 });
    expect((await survivor.store.workflowTotals('wf-h-dead'))?.totals).toEqual({ calls: 0, toolCalls: 0, tokens: 0, costUsd: 0 });
    // A reconcile arriving after its hold lapsed counts everything it used: nothing is lost either way.
    await survivor.store.settle(model('h-dead'), { tokens: 120, costUsd: 0.06 });
    expect((await survivor.store.windowTotals('agent', 'a'))?.perDay.tokens).toBe(920);
    expect((await survivor.store.workflowTotals('wf-h-dead'))?.totals).toEqual({ calls: 1, toolCalls: 0, tokens: 120, costUsd: 0.06 });
  });

  it('a command that fails on a dropped connection marks the store down before ioredis reports the drop; its reconnect clears it', async () => {
    const { client } = replica(new TestClock());
    await client.ready();
    expect(client.health()).toEqual({ ok: true });
    // What ioredis rejects a command with when its stream closed under it, here while the client still says ready.
    const failed = await client.call(() => Promise.reject(new Error('Connection is closed.'))).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(RedisUnavailableError);
    expect(client.redis.status).toBe('ready');
    expect(client.health().ok).toBe(false);
    expect(client.health().error).toMatch(/Connection is closed/);
    const reconnected = new Promise((resolve) => client.redis.once('ready', resolve));
    client.redis.disconnect(true);
    await reconnected;
    expect(client.health()).toEqual({ ok: true });
    // A slow command is no sign the connection is gone: health stays as it was.
    await client.call(() => Promise.reject(new Error('Command timed out'))).catch(() => undefined);
    expect(client.health()).toEqual({ ok: true });
  });

  it('Redis stopped: calls fail fast with a clear error and health is not ok; started again: the same store works', async () => {
    const server = await startRedis();
    const lines: Array<{ msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as { msg: string }) });
    try {
      const clock = new TestClock();
      const { client, store } = replica(clock, 'sy:', server.url, log);
      const limits: CounterLimit[] = [{ subject: 'agent', window: 'perMinute', dimension: 'calls', max: 5, mode: 'reserve' }];
      expect(await store.reserve(toolCall(limits))).toBeUndefined();
      expect(client.health()).toEqual({ ok: true });

      await server.stop();
      const t0 = performance.now();
      const failed = await store.reserve(toolCall(limits)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(failed).toBeInstanceOf(RedisUnavailableError);
      expect((failed as Error).message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is unreachable .* retry once Redis is back/);
      expect(client.health().ok).toBe(false);
      expect(client.health().error).toMatch(/unreachable/);
      await expect(store.workflowTotals('wf')).rejects.toThrow(RedisUnavailableError);
      expect(lines.filter((l) => /unreachable: .*calls are refused until it is back \(state\.failMode: closed\)/.test(l.msg))).toHaveLength(1);

      await server.start();
      await client.ready(10_000);
      expect(client.health()).toEqual({ ok: true });
      // The restarted server is empty and has no scripts loaded: the store counts again from zero.
      expect(await store.reserve(toolCall(limits))).toBeUndefined();
      expect((await store.windowTotals('agent', 'a'))?.perMinute.calls).toBe(1);
      expect(lines.filter((l) => /reachable again/.test(l.msg))).toHaveLength(1);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await server.close();
    }
  });
});

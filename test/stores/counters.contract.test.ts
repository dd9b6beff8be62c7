// The CounterStore contract, run against every implementation: atomic check-and-reserve over named dimensions,
// release, reconcile, rolling windows on a fake clock, and (durable stores) totals and windows surviving a restart.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CounterLimit, CounterStore, Reservation } from '../../src/stores/counters.js';
import { MemoryCounterStore } from '../../src/stores/memory/counters.js';
import { SqliteCounterStore } from '../../src/stores/sqlite/counters.js';
import { RedisCounterStore } from '../../src/stores/redis/counters.js';
import { stopTestRedis } from '../helpers/shared-stores.js';
import { removeStoreDirs, storeDir, TestClock, type SyncStoreFactory } from './factories.js';
import { closeRedisClients, redisClientFor, redisReady, redisSkip } from './redis-factories.js';

type Opts = { dimensions?: readonly string[] };
const factories: Array<SyncStoreFactory<CounterStore, Opts>> = [
  { name: 'memory', durable: false, open: (_dir, clock, opts) => new MemoryCounterStore({ now: clock.now, ...opts }) },
  {
    name: 'sqlite',
    durable: true,
    open: (dir, clock, opts) => new SqliteCounterStore({ file: join(dir, 'limits.db'), now: clock.now, flushMs: 60_000, ...opts }),
  },
  ...(redisSkip ? [] : [{ name: 'redis', durable: true, open: (dir: string, clock: TestClock, opts?: Opts) => new RedisCounterStore({ client: redisClientFor(dir), now: clock.now, ...opts }) }]),
];

beforeAll(redisReady);
afterEach(removeStoreDirs);
afterEach(closeRedisClients);
afterAll(stopTestRedis);

const MIN = 60_000;
const limit = (l: Partial<CounterLimit> & Pick<CounterLimit, 'max'>): CounterLimit => ({ subject: 'agent', window: 'perMinute', dimension: 'toolCalls', mode: 'reserve', ...l });
const toolCall = (limits: CounterLimit[], over: Partial<Reservation> = {}): Reservation => ({
  workflowId: 'wf',
  agentId: 'a',
  team: 't',
  amounts: { calls: 1, toolCalls: 1 },
  limits,
  ...over,
});

describe.each(factories)('CounterStore contract: $name', (f) => {
  const open = (opts?: Opts) => {
    const clock = new TestClock();
    const dir = storeDir();
    return { clock, dir, store: f.open(dir, clock, opts) };
  };

  it('a reservation adds its amounts to the workflow, the agent and the team', async () => {
    const { store } = open();
    expect(await store.reserve(toolCall([]))).toBeUndefined();
    expect(await store.reserve(toolCall([], { amounts: { calls: 1 } }))).toBeUndefined();
    expect((await store.workflowTotals('wf'))?.totals).toEqual({ calls: 2, toolCalls: 1, tokens: 0 });
    expect((await store.windowTotals('agent', 'a'))?.perDay).toEqual({ calls: 2, toolCalls: 1, tokens: 0 });
    expect((await store.windowTotals('team', 't'))?.perMinute).toEqual({ calls: 2, toolCalls: 1, tokens: 0 });
    expect(await store.windowTotals('agent', 'nobody')).toBeUndefined();
    await store.close();
  });

  it('refuses the reservation that would exceed a limit, counting nothing, and names the first limit broken', async () => {
    const { store, clock } = open();
    const limits = [limit({ subject: 'workflow', window: 'total', max: 5 }), limit({ max: 2 }), limit({ subject: 'team', max: 1 })];
    expect(await store.reserve(toolCall(limits))).toBeUndefined();
    const breach = await store.reserve(toolCall(limits));
    expect(breach).toEqual({ limit: limits[2], used: 1, freesAt: clock.t + MIN });
    expect((await store.workflowTotals('wf'))?.totals.toolCalls).toBe(1);
    expect((await store.windowTotals('agent', 'a'))?.perMinute.toolCalls).toBe(1);
    await store.close();
  });

  it('check answers what reserve would, counting nothing', async () => {
    const { store } = open();
    const limits = [limit({ max: 1 })];
    expect(await store.check(toolCall(limits))).toBeUndefined();
    expect(await store.check(toolCall(limits))).toBeUndefined();
    expect(await store.reserve(toolCall(limits))).toBeUndefined();
    expect((await store.check(toolCall(limits)))?.used).toBe(1);
    expect((await store.windowTotals('agent', 'a'))?.perMinute.toolCalls).toBe(1);
    await store.close();
  });

  it('30 concurrent reservations against a limit of 10 leave exactly 10 counted', async () => {
    const { store } = open();
    const limits = [limit({ subject: 'team', window: 'perDay', max: 10 })];
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => store.reserve(toolCall(limits, { workflowId: `wf-${i}`, agentId: `a-${i % 3}` }))));
    expect(results.filter((r) => r === undefined)).toHaveLength(10);
    expect((await store.windowTotals('team', 't'))?.perDay.toolCalls).toBe(10);
    await store.close();
  });

  it('release gives a reservation back', async () => {
    const { store } = open();
    const limits = [limit({ max: 1 })];
    const r = toolCall(limits);
    expect(await store.reserve(r)).toBeUndefined();
    await store.release(r);
    expect((await store.workflowTotals('wf'))?.totals.toolCalls).toBe(0);
    expect((await store.windowTotals('team', 't'))?.perMinute.toolCalls).toBe(0);
    expect(await store.reserve(r)).toBeUndefined();
    await store.close();
  });

  it('settle replaces a held reservation by what was used, and release gives a held one back', async () => {
    const { store } = open({ dimensions: ['calls', 'toolCalls', 'tokens', 'costUsd'] });
    const tokens = [limit({ window: 'perDay', dimension: 'tokens', max: 1000 })];
    const model = toolCall(tokens, { amounts: { calls: 1, tokens: 800, costUsd: 0.5 }, hold: { id: 'h1', ms: 60_000 } });
    expect(await store.reserve(model)).toBeUndefined();
    expect((await store.reserve({ ...model, hold: { id: 'h2', ms: 60_000 } }))?.used).toBe(800);
    await store.settle(model, { tokens: 120, costUsd: 0.25 });
    expect((await store.windowTotals('agent', 'a'))?.perDay).toEqual({ calls: 1, toolCalls: 0, tokens: 120, costUsd: 0.25 });
    const second = { ...model, hold: { id: 'h3', ms: 60_000 } };
    expect(await store.reserve(second)).toBeUndefined();
    await store.release(second);
    expect((await store.workflowTotals('wf'))?.totals).toEqual({ calls: 1, toolCalls: 0, tokens: 120, costUsd: 0.25 });
    await store.close();
  });

  it('spent limits refuse once amounts added after the fact reach max, even when they overshoot it', async () => {
    const { store } = open();
    const tokens = [limit({ subject: 'workflow', window: 'total', dimension: 'tokens', mode: 'spent', max: 100 })];
    const model = toolCall(tokens, { amounts: { calls: 1 } });
    expect(await store.reserve(model)).toBeUndefined();
    await store.add({ workflowId: 'wf', agentId: 'a' }, { tokens: 250 });
    expect(await store.reserve(model)).toEqual({ limit: tokens[0], used: 250 });
    expect((await store.windowTotals('agent', 'a'))?.perHour.tokens).toBe(250);
    await store.close();
  });

  it('a rolling window frees up exactly when its oldest bucket slides out', async () => {
    const { store, clock } = open();
    const limits = [limit({ max: 2 })];
    const start = clock.t;
    expect(await store.reserve(toolCall(limits))).toBeUndefined();
    clock.t += 30_000;
    expect(await store.reserve(toolCall(limits))).toBeUndefined();
    expect((await store.reserve(toolCall(limits)))?.freesAt).toBe(start + MIN);
    clock.t = start + MIN - 1;
    expect(await store.reserve(toolCall(limits))).toBeDefined();
    clock.t = start + MIN;
    expect(await store.reserve(toolCall(limits))).toBeUndefined();
    expect((await store.windowTotals('agent', 'a'))?.perMinute.toolCalls).toBe(2);
    await store.close();
  });

  it('a limit of 0 never frees up', async () => {
    const { store } = open();
    const breach = await store.reserve(toolCall([limit({ window: 'perHour', dimension: 'calls', max: 0 })]));
    expect(breach?.used).toBe(0);
    expect(breach?.freesAt).toBeUndefined();
    await store.close();
  });

  it("a workflow's age counts from its first step or from beginWorkflow, whichever is earlier", async () => {
    const { store, clock } = open();
    const age = [limit({ subject: 'workflow', window: 'total', dimension: 'ageSeconds', mode: 'spent', max: 60 })];
    await store.beginWorkflow('wf', clock.t - 30_000);
    expect(await store.reserve(toolCall(age))).toBeUndefined();
    clock.t += 30_000;
    expect(await store.reserve(toolCall(age))).toEqual({ limit: age[0], used: 60 });
    expect((await store.workflowTotals('wf'))?.startedAt).toBe(clock.t - 60_000);
    await store.close();
  });

  it('counts a dimension it is built with beyond the standard ones (e.g. costUsd)', async () => {
    const { store } = open({ dimensions: ['calls', 'toolCalls', 'tokens', 'costUsd'] });
    const cost = [limit({ window: 'perDay', dimension: 'costUsd', mode: 'spent', max: 1 })];
    const r = toolCall(cost, { amounts: { calls: 1 } });
    expect(await store.reserve(r)).toBeUndefined();
    await store.add({ workflowId: 'wf', agentId: 'a', team: 't' }, { costUsd: 0.75 });
    expect(await store.reserve(r)).toBeUndefined();
    await store.add({ workflowId: 'wf', agentId: 'a', team: 't' }, { costUsd: 0.5 });
    expect((await store.reserve(r))?.used).toBe(1.25);
    expect((await store.workflowTotals('wf'))?.totals.costUsd).toBe(1.25);
    await store.close();
  });

  it('refuses a dimension it does not count, or an amount that is not a number, counting nothing', async () => {
    const { store } = open();
    await expect(async () => store.reserve(toolCall([], { amounts: { calls: 1, costUsd: 1 } }))).rejects.toThrow(/costUsd.*not counted/);
    await expect(async () => store.reserve(toolCall([limit({ dimension: 'costUsd', max: 1 })]))).rejects.toThrow(/not counted/);
    await expect(async () => store.add({ workflowId: 'wf', agentId: 'a' }, { tokens: Number.NaN })).rejects.toThrow(/finite number/);
    expect(await store.workflowTotals('wf')).toMatchObject({ totals: { calls: 0, toolCalls: 0, tokens: 0 } });
    await store.close();
  });

  it.runIf(f.durable)('workflow totals and windows survive a restart', async () => {
    const { store, clock, dir } = open({ dimensions: ['calls', 'toolCalls', 'tokens', 'costUsd'] });
    const limits = [limit({ max: 3 })];
    for (let i = 0; i < 3; i++) expect(await store.reserve(toolCall(limits))).toBeUndefined();
    await store.add({ workflowId: 'wf', agentId: 'a', team: 't' }, { tokens: 40, costUsd: 0.25 });
    await store.close();

    clock.t += 10_000;
    const again = f.open(dir, clock, { dimensions: ['calls', 'toolCalls', 'tokens', 'costUsd'] });
    expect((await again.workflowTotals('wf'))?.totals).toEqual({ calls: 3, toolCalls: 3, tokens: 40, costUsd: 0.25 });
    expect((await again.windowTotals('team', 't'))?.perMinute).toEqual({ calls: 3, toolCalls: 3, tokens: 40, costUsd: 0.25 });
    expect((await again.reserve(toolCall(limits)))?.used).toBe(3);
    clock.t += MIN;
    expect(await again.reserve(toolCall(limits))).toBeUndefined();
    await again.close();

    // Opened with fewer dimensions: the ones it knows keep their counts.
    const fewer = f.open(dir, clock);
    expect((await fewer.windowTotals('agent', 'a'))?.perDay).toEqual({ calls: 4, toolCalls: 4, tokens: 40 });
    await fewer.close();
  });
});

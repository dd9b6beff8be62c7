import { afterEach, describe, expect, it } from 'vitest';
import { LimitCounters, type ConsumeRequest, type LimitCountersOptions } from '../../src/limits/counters.js';
import { RollingWindow } from '../../src/limits/window.js';
import { FakeClock, removeTempDirs, tempDir } from './helpers.js';
import { embedded, type Sync } from '../helpers/sync.js';

afterEach(removeTempDirs);

/** LimitCounters over its embedded stores (memory, SQLite), which answer synchronously. */
type SyncCounters = Sync<LimitCounters>;
const counters = (opts?: LimitCountersOptions): SyncCounters => embedded(new LimitCounters(opts));

function req(extra: Partial<ConsumeRequest> = {}): ConsumeRequest {
  return { workflowId: 'wf-1', agentId: 'a1', kind: 'tools/call', ...extra };
}

/** Consume n times and return how many passed before the first refusal, plus that refusal. */
function drain(c: SyncCounters, r: ConsumeRequest, n: number) {
  let passed = 0;
  for (let i = 0; i < n; i++) {
    const refusal = c.tryConsume(r);
    if (refusal) return { passed, refusal };
    passed++;
  }
  return { passed, refusal: undefined };
}

describe('LimitCounters: workflow budgets', () => {
  it('refuses the tool call that would cross workflow.toolCalls, and the earlier ones pass', () => {
    const c = counters();
    const r = req({ agentLimits: { workflow: { toolCalls: 3 } } });
    const { passed, refusal } = drain(c, r, 10);
    expect(passed).toBe(3);
    expect(refusal?.reason).toBe('budget_exceeded');
    expect(refusal?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 3, max: 3, workflowId: 'wf-1' });
    expect(refusal?.message).toMatch(/start a new workflow/);
    // A refused call consumed nothing.
    expect(c.workflowUsage('wf-1')).toMatchObject({ steps: 3, toolCalls: 3 });
  });

  it('counts every step kind against workflow.steps but only tools/call against toolCalls', () => {
    const c = counters();
    const limits = { workflow: { steps: 4, toolCalls: 10 } };
    expect(c.tryConsume(req({ kind: 'resources/read', agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ kind: 'prompts/get', agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ kind: 'a2a/message', agentLimits: limits }))).toBeUndefined();
    const refusal = c.tryConsume(req({ agentLimits: limits }));
    expect(refusal?.data).toMatchObject({ limit: 'workflow.steps', used: 4, max: 4 });
    expect(c.workflowUsage('wf-1')).toMatchObject({ steps: 4, toolCalls: 1 });
  });

  it('keeps workflows apart', () => {
    const c = counters();
    const limits = { workflow: { toolCalls: 1 } };
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentLimits: limits }))?.reason).toBe('budget_exceeded');
    expect(c.tryConsume(req({ workflowId: 'wf-2', agentLimits: limits }))).toBeUndefined();
  });

  it('refuses model calls once workflow.tokens is spent, from the usage the model route reports', () => {
    const c = counters();
    const limits = { workflow: { tokens: 1000 } };
    const model = req({ kind: 'model/call', agentLimits: limits });
    expect(c.tryConsume(model)).toBeUndefined();
    c.addTokens('wf-1', 'a1', undefined, 600);
    expect(c.tryConsume(model)).toBeUndefined();
    c.addTokens('wf-1', 'a1', undefined, 600);
    const refusal = c.tryConsume(model);
    expect(refusal?.reason).toBe('budget_exceeded');
    expect(refusal?.data).toMatchObject({ limit: 'workflow.tokens', used: 1200, max: 1000 });
    // Tool calls spend no tokens, so a token budget does not stop them.
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
  });

  it('refuses once workflow.seconds of wall time have passed since the first step', () => {
    const clock = new FakeClock();
    const c = counters({ now: clock.now });
    const limits = { workflow: { seconds: 60 } };
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    clock.advance(59_999);
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    clock.advance(1);
    expect(c.tryConsume(req({ agentLimits: limits }))?.data).toMatchObject({ limit: 'workflow.seconds', used: 60, max: 60 });
  });
});

describe('LimitCounters: rolling windows', () => {
  it('rate-limits perMinute.toolCalls across workflows of one agent, with resetAt', () => {
    const clock = new FakeClock();
    const c = counters({ now: clock.now });
    const limits = { perMinute: { toolCalls: 5 } };
    for (let i = 0; i < 5; i++) expect(c.tryConsume(req({ workflowId: `wf-${i}`, agentLimits: limits }))).toBeUndefined();
    const refusal = c.tryConsume(req({ workflowId: 'wf-x', agentLimits: limits }));
    expect(refusal?.reason).toBe('rate_limited');
    expect(refusal?.data).toMatchObject({ limit: 'perMinute.toolCalls', used: 5, max: 5, retryAfterSeconds: 60 });
    expect(refusal?.data?.resetAt).toBe(new Date(clock.t + 60_000).toISOString());
    expect(refusal?.message).toMatch(/retry after/);
    // Another agent has its own window.
    expect(c.tryConsume(req({ agentId: 'a2', agentLimits: limits }))).toBeUndefined();
  });

  it('rolls over: calls free up as their buckets slide out of the window', () => {
    const clock = new FakeClock();
    const c = counters({ now: clock.now });
    const limits = { perMinute: { calls: 3 } };
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    clock.advance(30_000);
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentLimits: limits }))?.reason).toBe('rate_limited');
    clock.advance(30_000); // the first call is now a minute old
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentLimits: limits }))?.reason).toBe('rate_limited');
    clock.advance(30_000);
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentLimits: limits }))).toBeUndefined();
  });

  it('perHour is a rate limit, perDay a budget', () => {
    const clock = new FakeClock();
    const c = counters({ now: clock.now });
    expect(drain(c, req({ agentLimits: { perHour: { calls: 2 } } }), 5).refusal?.reason).toBe('rate_limited');
    const day = drain(c, req({ agentId: 'a2', agentLimits: { perDay: { toolCalls: 2 } } }), 5);
    expect(day.passed).toBe(2);
    expect(day.refusal?.reason).toBe('budget_exceeded');
    expect(day.refusal?.data).toMatchObject({ limit: 'perDay.toolCalls' });
    clock.advance(24 * 3_600_000);
    expect(c.tryConsume(req({ agentId: 'a2', agentLimits: { perDay: { toolCalls: 2 } } }))).toBeUndefined();
  });

  it('team windows span the team’s agents and name the team limit', () => {
    const clock = new FakeClock();
    const c = counters({ now: clock.now });
    const teamLimits = { perDay: { tokens: 1000 }, perMinute: { calls: 3 } };
    const a = req({ agentId: 'a1', team: 'data', kind: 'model/call', teamLimits });
    const b = req({ agentId: 'a2', team: 'data', kind: 'model/call', teamLimits });
    expect(c.tryConsume(a)).toBeUndefined();
    c.addTokens('wf-1', 'a1', 'data', 700);
    expect(c.tryConsume(b)).toBeUndefined();
    c.addTokens('wf-1', 'a2', 'data', 400);
    const refusal = c.tryConsume(a);
    expect(refusal?.reason).toBe('budget_exceeded');
    expect(refusal?.data).toMatchObject({ limit: 'team.perDay.tokens', used: 1100, max: 1000 });
    expect(refusal?.message).toMatch(/teams\.data\.perDay\.tokens/);
    expect(c.windowUsage('team', 'data')?.perDay).toEqual({ calls: 2, toolCalls: 0, tokens: 1100, costUsd: 0 });
  });

  it('team perMinute.calls counts calls from every agent of the team', () => {
    const c = counters({ now: new FakeClock().now });
    const teamLimits = { perMinute: { calls: 3 } };
    expect(c.tryConsume(req({ agentId: 'a1', team: 'ops', teamLimits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentId: 'a2', team: 'ops', teamLimits }))).toBeUndefined();
    expect(c.tryConsume(req({ agentId: 'a3', team: 'ops', teamLimits }))).toBeUndefined();
    const refusal = c.tryConsume(req({ agentId: 'a1', team: 'ops', teamLimits }));
    expect(refusal?.reason).toBe('rate_limited');
    expect(refusal?.data).toMatchObject({ limit: 'team.perMinute.calls', used: 3, max: 3 });
  });

  it('a refusal by one window consumes nothing in the others', () => {
    const c = counters({ now: new FakeClock().now });
    const agentLimits = { perMinute: { toolCalls: 100 }, workflow: { toolCalls: 100 } };
    const teamLimits = { perMinute: { toolCalls: 2 } };
    drain(c, req({ team: 't', agentLimits, teamLimits }), 10);
    expect(c.workflowUsage('wf-1')?.toolCalls).toBe(2);
    expect(c.windowUsage('agent', 'a1')?.perMinute.toolCalls).toBe(2);
  });

  it('lets exactly 10 of 20 parallel calls through a budget of 10', async () => {
    const c = counters();
    const limits = { workflow: { toolCalls: 10 } };
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i % 3));
        return c.tryConsume(req({ agentLimits: limits }));
      }),
    );
    expect(results.filter((r) => r === undefined)).toHaveLength(10);
    expect(results.filter((r) => r?.reason === 'budget_exceeded')).toHaveLength(10);
  });
});

describe('LimitCounters: persistence', () => {
  it('counters survive close and reopen of limits.db', () => {
    const dir = tempDir();
    const clock = new FakeClock();
    const first = counters({ dataDir: dir, now: clock.now });
    const r = req({ team: 'data', agentLimits: { workflow: { toolCalls: 5 }, perMinute: { toolCalls: 4 } }, teamLimits: { perDay: { tokens: 100 } } });
    for (let i = 0; i < 3; i++) expect(first.tryConsume(r)).toBeUndefined();
    first.addTokens('wf-1', 'a1', 'data', 150);
    first.close();

    clock.advance(5_000);
    const second = counters({ dataDir: dir, now: clock.now });
    expect(second.workflowUsage('wf-1')).toMatchObject({ steps: 3, toolCalls: 3, tokens: 150 });
    expect(second.windowUsage('agent', 'a1')?.perMinute).toEqual({ calls: 3, toolCalls: 3, tokens: 150, costUsd: 0 });
    expect(second.tryConsume(r)).toBeUndefined();
    expect(second.tryConsume(r)?.data).toMatchObject({ limit: 'perMinute.toolCalls', used: 4, max: 4 });
    expect(second.tryConsume(req({ team: 'data', kind: 'model/call', teamLimits: { perDay: { tokens: 100 } } }))?.data).toMatchObject({
      limit: 'team.perDay.tokens',
      used: 150,
    });
    second.close();

    // Restored windows still roll over with time.
    clock.advance(60_000);
    const third = counters({ dataDir: dir, now: clock.now });
    expect(third.windowUsage('agent', 'a1')?.perMinute).toEqual({ calls: 0, toolCalls: 0, tokens: 0, costUsd: 0 });
    expect(third.windowUsage('agent', 'a1')?.perHour.toolCalls).toBe(4);
    expect(third.tryConsume(r)).toBeUndefined();
    expect(third.tryConsume(r)?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 5 });
    third.close();
  });

  it('writes behind on its timer without waiting for close', async () => {
    const dir = tempDir();
    const first = counters({ dataDir: dir, flushMs: 10 });
    first.tryConsume(req());
    await new Promise((r) => setTimeout(r, 60));
    const reader = counters({ dataDir: dir });
    expect(reader.workflowUsage('wf-1')?.steps).toBe(1);
    reader.close();
    first.close();
  });

  it('reloads a workflow evicted from memory from disk', () => {
    const dir = tempDir();
    const c = counters({ dataDir: dir, maxCachedWorkflows: 2 });
    const limits = { workflow: { toolCalls: 2 } };
    drain(c, req({ agentLimits: limits }), 2);
    c.flush();
    for (let i = 0; i < 5; i++) c.tryConsume(req({ workflowId: `other-${i}` }));
    expect(c.tryConsume(req({ agentLimits: limits }))?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 2 });
    c.close();
  });
});

describe('RollingWindow', () => {
  it('reports when enough buckets have slid out for the total to fall below a limit', () => {
    const w = new RollingWindow(60_000, 60, 0);
    w.advance(10_500);
    w.add('calls', 1);
    w.advance(40_000);
    w.add('calls', 1);
    expect(w.freesAt('calls', 2, 40_000)).toBe(70_000);
    expect(w.freesAt('calls', 1, 40_000)).toBe(100_000);
    expect(w.freesAt('calls', 3, 40_000)).toBe(40_000);
    expect(w.freesAt('calls', 0, 40_000)).toBeUndefined();
    expect(w.totalsAt(69_999).calls).toBe(2);
    expect(w.totalsAt(70_000).calls).toBe(1);
    expect(w.totalsAt(100_000).calls).toBe(0);
  });

  it('ignores a snapshot taken with a different bucket layout', () => {
    const w = new RollingWindow(60_000, 60, 0);
    w.add('tokens', 5);
    const snap = w.snapshot();
    expect(new RollingWindow(60_000, 30, 0, snap).totalsAt(0).tokens).toBe(0);
    expect(new RollingWindow(60_000, 60, 0, snap).totalsAt(0).tokens).toBe(5);
  });
});

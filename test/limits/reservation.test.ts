// Token and cost reservations in the limit counters: a model call's estimate must fit every token and cost limit;
// reconciling counts the difference; a reservation larger than a limit says so.
import { describe, expect, it } from 'vitest';
import { LimitCounters, type ConsumeRequest } from '../../src/limits/counters.js';
import { embedded } from '../helpers/sync.js';

function clock(start = Date.UTC(2026, 0, 1, 12)) {
  const c = { t: start, now: () => c.t };
  return c;
}

const req = (over: Partial<ConsumeRequest>): ConsumeRequest => ({ workflowId: 'wf', agentId: 'a', kind: 'model/call', ...over });

describe('reservations', () => {
  it('admits while the reservation fits, refuses the one that would not, spends nothing on a refusal', () => {
    const c = embedded(new LimitCounters({ now: clock().now }));
    const r = req({ agentLimits: { workflow: { tokens: 100 } }, reserve: { tokens: 40, costUsd: 0 } });
    expect(c.tryConsume(r)).toBeUndefined();
    expect(c.tryConsume(r)).toBeUndefined();
    const refused = c.tryConsume(r);
    expect(refused).toMatchObject({ reason: 'budget_exceeded', data: { limit: 'workflow.tokens', used: 80, max: 100, reserved: 40 } });
    expect(refused!.message).toMatch(/20 tokens of its tokens budget left .* this call reserves 40 tokens/);
    expect(c.workflowUsage('wf')?.tokens).toBe(80);
  });

  it('settle replaces the reservation by the usage, freeing what was not used', () => {
    const k = clock();
    const c = embedded(new LimitCounters({ now: k.now }));
    const r = req({ agentLimits: { perMinute: { tokens: 100 } }, reserve: { tokens: 60, costUsd: 0.5 } });
    expect(c.tryConsume(r)).toBeUndefined();
    expect(c.tryConsume(r)?.reason).toBe('rate_limited');
    c.settle(r, { tokens: 15, costUsd: 0.1 });
    expect(c.windowUsage('agent', 'a')?.perMinute).toMatchObject({ tokens: 15 });
    expect(c.windowUsage('agent', 'a')?.perMinute.costUsd).toBeCloseTo(0.1, 12);
    expect(c.workflowUsage('wf')).toMatchObject({ tokens: 15 });
    expect(c.tryConsume(r)).toBeUndefined();
  });

  it('a failed call settles to nothing: its whole reservation is given back', () => {
    const k = clock();
    const c = embedded(new LimitCounters({ now: k.now }));
    const r = req({ agentLimits: { perMinute: { tokens: 1000 } }, reserve: { tokens: 500, costUsd: 0 } });
    c.tryConsume(r);
    k.t += 30_000;
    c.settle(r, { tokens: 0, costUsd: 0 });
    expect(c.windowUsage('agent', 'a')?.perMinute.tokens).toBe(0);
    expect(c.workflowUsage('wf')).toMatchObject({ tokens: 0 });
  });

  it('release gives a reservation back whole (a later commit refused)', () => {
    const c = embedded(new LimitCounters({ now: clock().now }));
    const r = req({ teamLimits: { perDay: { costUsd: 1 } }, team: 't', reserve: { tokens: 10, costUsd: 0.6 } });
    expect(c.tryConsume(r)).toBeUndefined();
    c.release(r);
    expect(c.windowUsage('team', 't')?.perDay).toMatchObject({ tokens: 0, costUsd: 0 });
    expect(c.tryConsume(r)).toBeUndefined();
    const over = c.tryConsume(r);
    expect(over).toMatchObject({ reason: 'budget_exceeded', data: { limit: 'team.perDay.costUsd' } });
  });

  it('a call that alone reserves more than a limit is told to ask for fewer tokens', () => {
    const c = embedded(new LimitCounters({ now: clock().now }));
    const over = c.tryConsume(req({ agentLimits: { perMonth: { tokens: 1000 } }, reserve: { tokens: 5000, costUsd: 0 } }));
    expect(over).toMatchObject({ reason: 'budget_exceeded', data: { limit: 'perMonth.tokens', reserved: 5000 } });
    expect(over!.message).toMatch(/alone reserves 5000 tokens, more than the monthly tokens limit/);
  });

  it('remaining is the tightest token and cost budget, after reservations', () => {
    const c = embedded(new LimitCounters({ now: clock().now }));
    const r = req({ agentLimits: { workflow: { tokens: 1000 }, perDay: { tokens: 300, costUsd: 2 } }, reserve: { tokens: 100, costUsd: 0.5 } });
    c.tryConsume(r);
    expect(c.remaining(r)).toEqual({ tokens: 200, costUsd: 1.5 });
  });
});

// The guard chain in phases, with the real workflow-state, delegation, limits and loop guards: a refusal anywhere
// spends nothing, a refusing commit rolls back the commits before it, `after` sees outcomes, sync stays sync.
import { describe, expect, it } from 'vitest';
import { GuardChain } from '../../src/gateway/chain.js';
import type { Guard, PhasedGuard, Refusal, StepOutcome } from '../../src/gateway/types.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { LoopDetector } from '../../src/limits/loop.js';
import { FakeClock, agent, step } from '../limits/helpers.js';
import { LOOP, pipeline, refusal, refusers, TOOL, WF } from './guard-fixture.js';
import { settled } from '../helpers/sync.js';

describe('guard phases: a refused call spends nothing', () => {
  for (const r of refusers) {
    it(`a refusal by the ${r.guard} guard leaves budgets, windows, loop history and the delegation slice as they were`, async () => {
      const p = pipeline();
      r.arm(p);
      const refused = await p.chain.run(p.call({ n: 1 }, r.jti), {});
      expect(refused?.reason).toBe(r.reason);
      expect(p.toolCallsUsed()).toBe(0);
      expect(p.windowUsed()).toBe(0);
      if (r.guard !== 'loop') expect(p.detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP)).toBeUndefined();
      r.lift(p);
      // Budget, window and slice are all 1: the next call fits them, the one after it does not.
      expect(await p.chain.run(p.call({ n: 2 }), {})).toBeUndefined();
      expect(p.toolCallsUsed()).toBe(1);
      expect(p.windowUsed()).toBe(1);
      const spent = await p.chain.run(p.call({ n: 3 }), {});
      expect(spent?.data).toMatchObject({ limit: 'delegation.budget.toolCalls', used: 1, max: 1 });
    });
  }

  it('the loop check refuses a call that would trip without recording it', () => {
    const detector = new LoopDetector({ now: new FakeClock().now });
    expect(detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP)).toBeUndefined();
    expect(detector.check(WF, TOOL, { n: 1 }, LOOP)).toBeUndefined();
    expect(settled(detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP))?.count).toBe(2);
    expect(settled(detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP))?.count).toBe(2);
    detector.forgetLast(WF, TOOL, { n: 1 });
    expect(detector.check(WF, TOOL, { n: 1 }, LOOP)).toBeUndefined();
  });
});

describe('guard phases: commits', () => {
  it('two calls that passed every check while approval was pending do not both fit a budget of one', async () => {
    const p = pipeline({ toolCalls: 1, budget: 5 });
    let approve!: () => void;
    p.toggles.approvalWait = new Promise<void>((resolve) => (approve = resolve));
    const a = p.chain.run(p.call({ n: 1 }), {});
    const b = p.chain.run(p.call({ n: 2 }), {});
    expect(p.toolCallsUsed()).toBe(0);
    approve();
    const results = await Promise.all([a, b]);
    expect(results.filter((x) => x === undefined)).toHaveLength(1);
    expect(results.find((x) => x !== undefined)?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 1, max: 1 });
    expect(p.toolCallsUsed()).toBe(1);
    expect(p.windowUsed()).toBe(1);
  });

  it('a commit that refuses rolls back the commits before it: budget, window and delegation slice', async () => {
    const p = pipeline({ toolCalls: 5, budget: 2 });
    let approve!: () => void;
    p.toggles.approvalWait = new Promise<void>((resolve) => (approve = resolve));
    // The same call twice: both pass the loop check while waiting; the second trips at its commit.
    const a = p.chain.run(p.call({ n: 1 }), {});
    const b = p.chain.run(p.call({ n: 1 }), {});
    approve();
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toBeUndefined();
    expect(rb?.reason).toBe('loop_detected');
    expect(p.workflows.state(WF)).toBe('tripped');
    expect(p.toolCallsUsed()).toBe(1);
    expect(p.windowUsed()).toBe(1);
    p.workflows.states.set(WF, 'active');
    p.toggles.approvalWait = undefined;
    // The slice of two has one call left, not none.
    expect(await p.chain.run(p.call({ n: 2 }), {})).toBeUndefined();
    expect((await p.chain.run(p.call({ n: 3 }), {}))?.data).toMatchObject({ limit: 'delegation.budget.toolCalls', used: 2, max: 2 });
  });

  it('the limits rollback gives back the workflow totals and the agent and team windows of the reservation', () => {
    const counters = new LimitCounters({ now: new FakeClock().now });
    const req = { workflowId: WF, agentId: 'a', team: 't', kind: 'tools/call' as const, agentLimits: { workflow: { toolCalls: 1 } }, teamLimits: { perMinute: { toolCalls: 1 } } };
    expect(counters.check(req)).toBeUndefined();
    expect(counters.workflowUsage(WF)).toMatchObject({ steps: 0, toolCalls: 0 });
    expect(counters.tryConsume(req)).toBeUndefined();
    expect(settled(counters.check(req))?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 1 });
    counters.release(req);
    expect(counters.workflowUsage(WF)).toMatchObject({ steps: 0, toolCalls: 0 });
    expect(settled(counters.windowUsage('agent', 'a'))?.perMinute).toMatchObject({ calls: 0, toolCalls: 0 });
    expect(settled(counters.windowUsage('team', 't'))?.perMinute).toMatchObject({ calls: 0, toolCalls: 0 });
    expect(counters.tryConsume(req)).toBeUndefined();
  });

  it('rolls back only the commits already made, newest first', () => {
    const log: string[] = [];
    const g = (name: string, refuse = false): PhasedGuard => ({
      commit: () => (log.push(`commit ${name}`), refuse ? refusal('budget_exceeded') : undefined),
      rollback: () => void log.push(`rollback ${name}`),
    });
    const chain = new GuardChain([g('a'), g('b'), g('c', true), g('d')]);
    expect((chain.run(step(agent('x')), {}) as Refusal | undefined)?.reason).toBe('budget_exceeded');
    expect(log).toEqual(['commit a', 'commit b', 'commit c', 'rollback b', 'rollback a']);
    log.length = 0;
    chain.rollback(step(agent('x')));
    expect(log).toEqual(['rollback d', 'rollback c', 'rollback b', 'rollback a']);
  });

  it('commits only after every check allowed, and not at all when one refused', async () => {
    const log: string[] = [];
    const g = (name: string, verdict?: () => Refusal | undefined | Promise<Refusal | undefined>): PhasedGuard => ({
      check: () => (log.push(`check ${name}`), verdict?.()),
      commit: () => void log.push(`commit ${name}`),
    });
    await new GuardChain([g('a'), g('b'), g('ask', () => Promise.resolve(undefined))]).run(step(agent('x')), {});
    expect(log).toEqual(['check a', 'check b', 'check ask', 'commit a', 'commit b', 'commit ask']);
    log.length = 0;
    const refused = await new GuardChain([g('a'), g('b'), g('ask', () => Promise.resolve(refusal('approval_denied')))]).run(step(agent('x')), {});
    expect(refused?.reason).toBe('approval_denied');
    expect(log).toEqual(['check a', 'check b', 'check ask']);
  });
});

describe('guard phases: after and the synchronous path', () => {
  it('after hands each outcome to every guard that has one', () => {
    const seen: Array<[string, StepOutcome['outcome'], string | undefined]> = [];
    const watcher = (name: string): Guard => ({ after: (_s, o) => void seen.push([name, o.outcome, o.reason]) });
    const chain = new GuardChain([() => undefined, watcher('one'), watcher('two')]);
    const s = step(agent('x'));
    chain.after(s, { outcome: 'ok', durationMs: 3 });
    chain.after(s, { outcome: 'error', reason: 'cancelled', durationMs: 4 });
    expect(seen).toEqual([
      ['one', 'ok', undefined],
      ['two', 'ok', undefined],
      ['one', 'error', 'cancelled'],
      ['two', 'error', 'cancelled'],
    ]);
  });

  it('stays synchronous when no check waits: allowed, refused at a check, and refused at a commit', () => {
    const p = pipeline({ toolCalls: 1, budget: 5 });
    const allowed = p.chain.run(p.call({ n: 1 }), {});
    expect(allowed).toBeUndefined();
    const atCheck = p.chain.run(p.call({ n: 2 }), {});
    expect(atCheck).not.toBeInstanceOf(Promise);
    expect((atCheck as Refusal).reason).toBe('budget_exceeded');
    const atCommit = new GuardChain([{ commit: () => refusal('budget_exceeded') }]).run(step(agent('x')), {});
    expect(atCommit).not.toBeInstanceOf(Promise);
    expect((atCommit as Refusal).reason).toBe('budget_exceeded');
  });
});

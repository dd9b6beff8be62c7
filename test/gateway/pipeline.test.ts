// The guard chain in phases, with the real workflow-state, delegation, limits and loop guards: a refusal anywhere
// spends nothing, a refusing commit rolls back the commits before it, `after` sees outcomes, sync stays sync.
import { describe, expect, it } from 'vitest';
import { GuardChain } from '../../src/gateway/chain.js';
import { createDelegationGuard } from '../../src/gateway/guards/delegation.js';
import { createLimitsGuard } from '../../src/gateway/guards/limits.js';
import { createLoopGuard } from '../../src/gateway/guards/loop.js';
import { createWorkflowStateGuard } from '../../src/gateway/guards/workflow-state.js';
import type { AgentManifest } from '../../src/config/types.js';
import type { MintedToken } from '../../src/stores/delegation.js';
import type { Guard, PhasedGuard, Refusal, Step, StepOutcome } from '../../src/gateway/types.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { LoopDetector, type LoopSettings } from '../../src/limits/loop.js';
import { FakeClock, FakeWorkflows, agent, step } from '../limits/helpers.js';

const WF = 'wf-p';
const TOOL = 'fs__read_file';
const LOOP: LoopSettings = { sameCall: 1, windowSeconds: 60 };

function token(jti: string, budgetToolCalls: number): MintedToken {
  return { jti, parentNode: 'root', workflowId: WF, agent: 'child', parentAgent: 'root', depth: 1, budgetToolCalls, issuedAt: 0, expiresAt: Number.MAX_SAFE_INTEGER };
}

const refusal = (reason: Refusal['reason']): Refusal => ({ reason, message: `refused (${reason}).` });

/** The gateway's guard order, with a policy-like check and an approval-like (asynchronous) check that can refuse. */
function pipeline(opts: { toolCalls?: number; budget?: number } = {}) {
  const clock = new FakeClock();
  const workflows = new FakeWorkflows();
  workflows.begin({ id: WF });
  const counters = new LimitCounters({ now: clock.now });
  const detector = new LoopDetector({ now: clock.now });
  const manifests = new Map<string, AgentManifest>();
  const limits = { workflow: { toolCalls: opts.toolCalls ?? 1 }, perMinute: { toolCalls: opts.toolCalls ?? 1 }, loop: LOOP };
  manifests.set('child', agent('child', limits));
  const tokens = new Map([['j1', token('j1', opts.budget ?? 1)], ['j0', token('j0', 0)]]);
  const toggles = { policy: false, approval: false, approvalWait: undefined as Promise<void> | undefined };
  const chain = new GuardChain()
    .use(createWorkflowStateGuard({ workflows }))
    .use(() => (toggles.policy ? refusal('policy_denied') : undefined))
    .use(createDelegationGuard({ tokenOf: (jti) => tokens.get(jti) }))
    .use(createLimitsGuard({ counters, teamsConfig: {}, agentById: (id) => manifests.get(id) }))
    .use(createLoopGuard({ detector, workflows, agentById: (id) => manifests.get(id) }))
    .use(() => {
      if (toggles.approvalWait) return toggles.approvalWait.then(() => (toggles.approval ? refusal('approval_denied') : undefined));
      return toggles.approval ? Promise.resolve(refusal('approval_denied')) : undefined;
    });
  const call = (args: Record<string, unknown>, jti = 'j1'): Step => {
    const s = step(manifests.get('child'), { workflowId: WF, tool: TOOL, args });
    s.caller = { ...s.caller, agentId: 'child', chain: ['child'], via: 'delegated', jti };
    return s;
  };
  const toolCallsUsed = (): number => counters.workflowUsage(WF)?.toolCalls ?? 0;
  const windowUsed = (): number => counters.windowUsage('agent', 'child')?.perMinute.toolCalls ?? 0;
  return { chain, counters, detector, workflows, manifests, toggles, call, toolCallsUsed, windowUsed, limits };
}

type P = ReturnType<typeof pipeline>;

/** How to make each guard refuse the next call, and how to lift it again. */
const refusers: Array<{ guard: string; reason: string; arm(p: P): void; lift(p: P): void; jti?: string }> = [
  { guard: 'workflow-state', reason: 'workflow_paused', arm: (p) => p.workflows.states.set(WF, 'paused'), lift: (p) => p.workflows.states.set(WF, 'active') },
  { guard: 'policy', reason: 'policy_denied', arm: (p) => void (p.toggles.policy = true), lift: (p) => void (p.toggles.policy = false) },
  { guard: 'delegation', reason: 'budget_exceeded', jti: 'j0', arm: () => {}, lift: () => {} },
  {
    guard: 'limits',
    reason: 'rate_limited',
    arm: (p) => p.manifests.set('child', agent('child', { ...p.limits, perMinute: { toolCalls: 0 } })),
    lift: (p) => p.manifests.set('child', agent('child', p.limits)),
  },
  {
    guard: 'loop',
    reason: 'loop_detected',
    arm: (p) => void p.detector.check(WF, TOOL, { n: 1 }, LOOP),
    // Back to active without the registry's reset, so the loop history stays as the refused call left it.
    lift: (p) => p.workflows.states.set(WF, 'active'),
  },
  { guard: 'approval', reason: 'approval_denied', arm: (p) => void (p.toggles.approval = true), lift: (p) => void (p.toggles.approval = false) },
];

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
    expect(detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP)?.count).toBe(2);
    expect(detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP)?.count).toBe(2);
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
    expect(counters.check(req)?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 1 });
    counters.release(req);
    expect(counters.workflowUsage(WF)).toMatchObject({ steps: 0, toolCalls: 0 });
    expect(counters.windowUsage('agent', 'a')?.perMinute).toMatchObject({ calls: 0, toolCalls: 0 });
    expect(counters.windowUsage('team', 't')?.perMinute).toMatchObject({ calls: 0, toolCalls: 0 });
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

// The gateway's guard order with the real workflow-state, delegation, limits and loop guards, and how to make each
// of them refuse: shared by the guard-chain and the Step-pipeline tests.
import { GuardChain } from '../../src/gateway/chain.js';
import { createDelegationGuard } from '../../src/gateway/guards/delegation.js';
import { createLimitsGuard } from '../../src/gateway/guards/limits.js';
import { createLoopGuard } from '../../src/gateway/guards/loop.js';
import { createWorkflowStateGuard } from '../../src/gateway/guards/workflow-state.js';
import type { AgentManifest } from '../../src/config/types.js';
import type { MintedToken } from '../../src/stores/delegation.js';
import type { Refusal, Step } from '../../src/gateway/types.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { LoopDetector, type LoopSettings } from '../../src/limits/loop.js';
import { FakeClock, FakeWorkflows, agent, step } from '../limits/helpers.js';
import { settled } from '../helpers/sync.js';

export const WF = 'wf-p';
export const TOOL = 'fs__read_file';
export const LOOP: LoopSettings = { sameCall: 1, windowSeconds: 60 };

function token(jti: string, budgetToolCalls: number): MintedToken {
  return { jti, parentNode: 'root', workflowId: WF, agent: 'child', parentAgent: 'root', depth: 1, budgetToolCalls, issuedAt: 0, expiresAt: Number.MAX_SAFE_INTEGER };
}

export const refusal = (reason: Refusal['reason']): Refusal => ({ reason, message: `refused (${reason}).` });

/** The gateway's guard order, with a policy-like check and an approval-like (asynchronous) check that can refuse. */
export function pipeline(opts: { toolCalls?: number; budget?: number } = {}) {
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
  const toolCallsUsed = (): number => settled(counters.workflowUsage(WF))?.toolCalls ?? 0;
  const windowUsed = (): number => settled(counters.windowUsage('agent', 'child'))?.perMinute.toolCalls ?? 0;
  return { chain, clock, counters, detector, workflows, manifests, toggles, call, toolCallsUsed, windowUsed, limits };
}

export type P = ReturnType<typeof pipeline>;

/** How to make each guard refuse the next call, and how to lift it again. */
export const refusers: Array<{ guard: string; reason: string; arm(p: P): void; lift(p: P): void; jti?: string }> = [
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

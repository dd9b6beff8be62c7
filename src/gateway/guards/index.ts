/** The gateway's guard chain, in DESIGN order: shared state reachable → workflow state → (authn at the adapter) → policy → a2a.allow → delegation → limits → loop → approval. */
import type { AgentManifest, GatewayConfig } from '../../config/types.js';
import type { PolicyResolver } from '../../identity/policy.js';
import type { LimitCounters } from '../../limits/counters.js';
import { LoopDetector } from '../../limits/loop.js';
import { GuardChain, type GuardChainOptions } from '../chain.js';
import type { LoopHistoryStore } from '../../stores/loop-history.js';
import type { Guard, GuardCheck, PhasedGuard, Step, WorkflowControl } from '../types.js';
import { createA2aAllowGuard } from './a2a-allow.js';
import { createApprovalGuard, needsApproval } from './approval.js';
import { createLimitsGuard, type LimitsGuard } from './limits.js';
import { createLoopGuard } from './loop.js';
import { createPolicyGuard } from './policy.js';
import { createWorkflowStateGuard } from './workflow-state.js';

export interface GatewayGuardsOptions {
  workflows: WorkflowControl;
  policies: PolicyResolver;
  /** Whether a server is a federated A2A agent (its `a2a.allow` applies). */
  isA2aServer: (server: string) => boolean;
  /** The delegation runtime's guard: `pstep` and budget slices of delegated tokens. */
  delegation: Guard;
  counters: LimitCounters;
  teams: () => GatewayConfig['teams'];
  /** The live manifest of an agent, so a reload of agents.d reaches open sessions. */
  agentById: (id: string) => AgentManifest | undefined;
  /** The limits guard, when the caller keeps it (the model route reads the budget left from it). */
  limits?: LimitsGuard;
  /** Where loop histories live (shared across replicas on Redis); default in memory. */
  loopHistory?: LoopHistoryStore;
  /** First of all: refuses every call while shared state is unreachable and state.failMode is closed. */
  sharedState?: GuardCheck;
  /** A rollback or after that failed once the call was decided (a store went away). */
  onError?: GuardChainOptions['onError'];
}

export function createGatewayGuards(o: GatewayGuardsOptions): GuardChain {
  const chain = new GuardChain([], { onError: o.onError });
  if (o.sharedState) chain.use(o.sharedState);
  const limits = o.limits ?? createLimitsGuard({ counters: o.counters, teamsConfig: o.teams, agentById: o.agentById });
  const loop = createLoopGuard({ detector: new LoopDetector({ store: o.loopHistory }), workflows: o.workflows, agentById: o.agentById });
  // Nothing checked after the limits can refuse or wait: no loop settings, no approval, a name already confirmed.
  const nothingAfter = (step: Step): boolean => step.unverified !== true && !loop.watches(step) && !needsApproval(o.policies, step);
  return chain
    .use(createWorkflowStateGuard({ workflows: o.workflows }))
    .use(createPolicyGuard(o.policies))
    .use(createA2aAllowGuard(o.isA2aServer))
    .use(o.delegation)
    .use(checkedAtCommit(limits, nothingAfter))
    .use(loop)
    .use(createApprovalGuard({ policies: o.policies }));
}

/**
 * The limits guard whose check is left to its commit when `nothingAfter(step)`: the commit checks and reserves in one
 * store operation and refuses as the check would, so a step nothing later can refuse or hold up gives the same answer
 * with one operation instead of two (a round trip less to a shared store). Otherwise it checks first as always, so an
 * over-budget call never waits for a human nor trips the loop guard (decision 0039).
 */
function checkedAtCommit(limits: LimitsGuard, nothingAfter: (step: Step) => boolean): PhasedGuard {
  return {
    check: (step, ctx) => (nothingAfter(step) ? undefined : limits.check!(step, ctx)),
    commit: limits.commit,
    rollback: limits.rollback,
    after: limits.after,
  };
}

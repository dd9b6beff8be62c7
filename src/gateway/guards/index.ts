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
  // Nothing after the loop guard can refuse or wait (no approval asked, the name already confirmed): the limits and the
  // loop guard decide at their commits, in the same order as their checks would (decision 0046).
  const decidedAtCommit = (step: Step): boolean => step.unverified !== true && !needsApproval(o.policies, step);
  return chain
    .use(createWorkflowStateGuard({ workflows: o.workflows }))
    .use(createPolicyGuard(o.policies))
    .use(createA2aAllowGuard(o.isA2aServer))
    .use(o.delegation)
    .use(checkedAtCommit(limits, decidedAtCommit))
    .use(checkedAtCommit(loop, decidedAtCommit))
    .use(createApprovalGuard({ policies: o.policies }));
}

/**
 * A guard whose check is left to its commit when `decidedAtCommit(step)`: the commit checks and spends in one store
 * operation and refuses as the check would, so a step nothing later can refuse or hold up gives the same answer with
 * one operation instead of two (a round trip less to a shared store, one loop history read instead of two). The
 * commits run in the order of the checks and a refusing commit rolls back those before it, so the refusal and what
 * stays spent are the same. Otherwise it checks first as always, so an over-budget call never waits for a human nor
 * trips the loop guard, and a name not yet confirmed spends nothing (decisions 0039, 0046).
 */
function checkedAtCommit(guard: PhasedGuard, decidedAtCommit: (step: Step) => boolean): PhasedGuard {
  const check = guard.check!;
  return {
    check: (step, ctx) => (decidedAtCommit(step) ? undefined : check(step, ctx)),
    commit: guard.commit,
    rollback: guard.rollback,
    after: guard.after,
  };
}

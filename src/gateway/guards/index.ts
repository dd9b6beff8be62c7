/** The gateway's guard chain, in DESIGN order: shared state reachable → workflow state → (authn at the adapter) → policy → a2a.allow → delegation → limits → loop → approval. */
import type { AgentManifest, GatewayConfig } from '../../config/types.js';
import type { PolicyResolver } from '../../identity/policy.js';
import type { LimitCounters } from '../../limits/counters.js';
import { LoopDetector } from '../../limits/loop.js';
import { GuardChain, type GuardChainOptions } from '../chain.js';
import type { LoopHistoryStore } from '../../stores/loop-history.js';
import type { Guard, GuardCheck, WorkflowControl } from '../types.js';
import { createA2aAllowGuard } from './a2a-allow.js';
import { createApprovalGuard } from './approval.js';
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
  return chain
    .use(createWorkflowStateGuard({ workflows: o.workflows }))
    .use(createPolicyGuard(o.policies))
    .use(createA2aAllowGuard(o.isA2aServer))
    .use(o.delegation)
    .use(o.limits ?? createLimitsGuard({ counters: o.counters, teamsConfig: o.teams, agentById: o.agentById }))
    .use(createLoopGuard({ detector: new LoopDetector({ store: o.loopHistory }), workflows: o.workflows, agentById: o.agentById }))
    .use(createApprovalGuard({ policies: o.policies }));
}

/** Guard: workflow budgets and per-agent / per-team rolling windows, checked and reserved in one synchronous step. */
import type { GatewayConfig } from '../../config/types.js';
import type { LimitCounters } from '../../limits/counters.js';
import type { Guard } from '../types.js';

export type TeamsConfig = GatewayConfig['teams'];

export interface LimitsGuardOptions {
  counters: LimitCounters;
  /** gateway.yaml `teams`; pass a getter so a config reload takes effect without rebuilding the chain. */
  teamsConfig: TeamsConfig | (() => TeamsConfig);
}

export function createLimitsGuard(opts: LimitsGuardOptions): Guard {
  const { counters, teamsConfig } = opts;
  const teams = typeof teamsConfig === 'function' ? teamsConfig : () => teamsConfig;
  return (step) => {
    const agent = step.caller.agent;
    const team = agent?.team;
    return counters.tryConsume({
      workflowId: step.workflowId,
      agentId: step.caller.agentId,
      team,
      kind: step.kind,
      agentLimits: agent?.limits,
      teamLimits: team === undefined ? undefined : teams()[team],
    });
  };
}

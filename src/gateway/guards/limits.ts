/**
 * Guard: workflow budgets and per-agent / per-team rolling windows. `check` asks whether the call would fit;
 * `commit` checks and reserves in one synchronous step (so concurrent calls never overshoot); `rollback` gives it back.
 */
import type { AgentManifest, GatewayConfig } from '../../config/types.js';
import type { ConsumeRequest, LimitCounters, Remaining } from '../../limits/counters.js';
import { mapAwaitable, type Awaitable } from '../../stores/types.js';
import type { Caller, PhasedGuard, Step, StepOutcome } from '../types.js';

export type TeamsConfig = GatewayConfig['teams'];

export interface LimitsGuardOptions {
  counters: LimitCounters;
  /** gateway.yaml `teams`; pass a getter so a config reload takes effect without rebuilding the chain. */
  teamsConfig: TeamsConfig | (() => TeamsConfig);
  /** The live manifest of an agent by id: a delegated caller spends its workflow root's budget (chain[0]). */
  agentById?: (id: string) => AgentManifest | undefined;
}

/** A sub-agent's steps count against the workflow budget of the agent that started the workflow. */
function workflowBudgetOf(caller: Caller, agent: AgentManifest | undefined, agentById: LimitsGuardOptions['agentById']): AgentManifest['limits'] | undefined {
  if (!agentById || caller.chain.length < 2) return undefined;
  const root = agentById(caller.chain[0]!);
  const own = agent?.limits ?? {};
  return root ? { ...own, workflow: root.limits.workflow } : undefined;
}

/** The limits guard, and what the model route asks it for its response headers. */
export interface LimitsGuard extends PhasedGuard {
  /** The tightest token and cost budget left to this step's caller. */
  remaining(step: Step): Awaitable<Remaining>;
}

export function createLimitsGuard(opts: LimitsGuardOptions): LimitsGuard {
  const { counters, teamsConfig, agentById } = opts;
  const teams = typeof teamsConfig === 'function' ? teamsConfig : () => teamsConfig;
  // The manifest in force now, not the one the session started with: a reload of agents.d reaches open sessions.
  const live = agentById ? (caller: Caller) => agentById(caller.agentId) : (caller: Caller) => caller.agent;
  // The request of the step checked last: its commit follows at once on the synchronous path, so it is built once.
  let lastStep: Step | undefined;
  let lastReq: ConsumeRequest | undefined;
  const requestOf = (step: Step): ConsumeRequest => {
    if (step === lastStep && lastReq) return lastReq;
    const agent = live(step.caller);
    const team = agent?.team;
    lastStep = step;
    lastReq = {
      workflowId: step.workflowId,
      agentId: step.caller.agentId,
      team,
      kind: step.kind,
      agentLimits: workflowBudgetOf(step.caller, agent, agentById) ?? agent?.limits,
      teamLimits: team === undefined ? undefined : teams()[team],
      reserve: step.model?.reserve,
    };
    return lastReq;
  };
  // Model reservations held until their step's outcome reconciles them.
  const held = new WeakMap<Step, ConsumeRequest>();
  return {
    check: (step) => counters.check(requestOf(step)),
    commit: (step) => {
      const req = requestOf(step);
      return mapAwaitable(counters.tryConsume(req), (refusal) => {
        if (!refusal && req.reserve) held.set(step, req);
        return refusal;
      });
    },
    rollback: (step) => {
      held.delete(step);
      return counters.release(requestOf(step));
    },
    after: (step: Step, outcome: StepOutcome) => {
      const req = held.get(step);
      if (!req) return;
      held.delete(step);
      const m = outcome.model;
      return counters.settle(req, { tokens: m ? m.tokens.input + m.tokens.output : 0, costUsd: m?.costUsd ?? 0 });
    },
    remaining: (step) => counters.remaining(held.get(step) ?? requestOf(step)),
  };
}

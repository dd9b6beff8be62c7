/** Refusals of a model call's reservation: what is left, what the call reserves, and what the caller can do. */
import type { Refusal } from '../gateway/types.js';
import type { CounterLimit } from '../stores/counters.js';
import type { ConsumeRequest, LimitRefusalData } from './counters.js';
import type { WindowName } from './window.js';

const WINDOW_WORDS: Record<WindowName, string> = { perMinute: 'per-minute', perHour: 'per-hour', perDay: 'daily', perMonth: 'monthly' };

function amount(metric: string, n: number): string {
  return metric === 'costUsd' ? `$${n.toFixed(4)}` : `${Math.round(n)} ${metric}`;
}

/**
 * The refusal of a reservation that does not fit, when it says more than the generic one: a call that alone
 * reserves more than the limit, or a workflow budget with some left but less than the call reserves.
 */
export function reservationRefusal(req: ConsumeRequest, limit: CounterLimit, used: number, reserved: number): Refusal | undefined {
  const metric = limit.dimension;
  const { max } = limit;
  const isWorkflow = limit.subject === 'workflow';
  const name = isWorkflow ? `workflow.${metric}` : limit.subject === 'team' ? `team.${limit.window}.${metric}` : `${limit.window}.${metric}`;
  const data: LimitRefusalData & { reserved: number } = { limit: name, used, max, workflowId: req.workflowId, reserved };
  const fewer = 'ask for fewer output tokens (max_tokens) or send a shorter conversation';
  if (reserved > max && max > 0) {
    const which = isWorkflow ? `${metric} budget of workflow ${req.workflowId}` : `${WINDOW_WORDS[limit.window as WindowName]} ${metric} limit of ${limit.subject === 'team' ? `team ${req.team}` : `agent ${req.agentId}`}`;
    return { reason: 'budget_exceeded', message: `This call alone reserves ${amount(metric, reserved)}, more than the ${which} (${amount(metric, max)}); ${fewer}.`, data: { ...data } };
  }
  if (isWorkflow && used < max) {
    return {
      reason: 'budget_exceeded',
      message:
        `Workflow ${req.workflowId} has ${amount(metric, max - used)} of its ${metric} budget left (${amount(metric, used)} of ${amount(metric, max)} used) and this call reserves ${amount(metric, reserved)}; ` +
        `${fewer}, or an admin can raise limits.workflow.${metric} for agent ${req.agentId} in agents.d.`,
      data: { ...data },
    };
  }
  return undefined;
}

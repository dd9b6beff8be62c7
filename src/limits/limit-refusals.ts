/** Refusals of the limit counters: which limit, how far it is spent, and what the caller or an admin can do. */
import type { Refusal } from '../gateway/types.js';
import type { ConsumeRequest, LimitRefusalData } from './counters.js';
import type { WindowName } from './window.js';

/** Daily and monthly windows and workflow totals are budgets; shorter windows are rates that recover soon. */
export function reasonFor(window: WindowName | 'workflow'): Refusal['reason'] {
  return window === 'perMinute' || window === 'perHour' ? 'rate_limited' : 'budget_exceeded';
}

export const WINDOW_WORDS: Record<WindowName, string> = { perMinute: 'per-minute', perHour: 'per-hour', perDay: 'daily', perMonth: 'monthly' };

export function shownAmount(metric: string, n: number): string {
  return metric === 'costUsd' ? `$${n.toFixed(4)}` : `${Math.round(n)} ${metric}`;
}

export function workflowRefusal(
  req: ConsumeRequest,
  metric: 'steps' | 'toolCalls' | 'tokens' | 'costUsd' | 'seconds',
  used: number,
  max: number,
  reserved?: number,
): Refusal {
  const data: LimitRefusalData = { limit: `workflow.${metric}`, used, max, workflowId: req.workflowId };
  if (reserved !== undefined && reserved > 0 && used < max) {
    return {
      reason: 'budget_exceeded',
      message:
        `Workflow ${req.workflowId} has ${shownAmount(metric, max - used)} of its ${metric} budget left (${shownAmount(metric, used)} of ${shownAmount(metric, max)} used) and this call reserves ${shownAmount(metric, reserved)}; ` +
        `ask for fewer output tokens (max_tokens), or an admin can raise limits.workflow.${metric} for agent ${req.agentId} in agents.d.`,
      data: { ...data, reserved },
    };
  }
  return {
    reason: reasonFor('workflow'),
    message:
      `Workflow ${req.workflowId} has used its ${metric} budget (${used} of ${max}); ` +
      `start a new workflow (new session), or an admin can raise limits.workflow.${metric} for agent ${req.agentId} in agents.d.`,
    data: { ...data },
  };
}

/** Step sinks besides the audit store: one pino line per step (joins logs to the audit trail) and metrics. */
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';
import type { Step, StepOutcome, StepSink } from './types.js';

/**
 * One line per step; at debug level the same line also carries the client-side name, the parent step, the trace
 * and the sizes. Arguments are never logged: they may hold secrets, and the audit trail keeps them (redacted).
 */
export function stepLogSink(log: Logger): StepSink {
  return {
    record(step: Step, o: StepOutcome) {
      if (!log.isLevelEnabled('info')) return;
      const line: Record<string, unknown> = {
        workflowId: step.workflowId,
        step: step.stepNo,
        agent: step.caller.agentId,
        kind: step.kind,
        server: step.server,
        tool: step.target,
        outcome: o.outcome,
        reason: o.reason,
        durationMs: o.durationMs,
      };
      if (log.isLevelEnabled('debug')) {
        line.exposedName = step.exposedName;
        line.parentStep = step.parentStep;
        line.traceparent = step.traceparent;
        line.bytes = o.bytes;
        line.tokens = o.tokens;
      }
      log.info(line, 'step');
    },
  };
}

export function metricsSink(metrics: Metrics): StepSink {
  return {
    record(step: Step, o: StepOutcome) {
      metrics.observeStep(step, o);
    },
  };
}

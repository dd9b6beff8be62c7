/** Step sinks besides the audit store: one pino line per step (joins logs to the audit trail) and metrics. */
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';
import type { Step, StepOutcome, StepSink } from './types.js';

/** Arguments are never logged: they may hold secrets, and the audit trail keeps them (redacted). */
export function stepLogSink(log: Logger): StepSink {
  return {
    record(step: Step, o: StepOutcome) {
      if (!log.isLevelEnabled('info')) return;
      log.info(
        {
          workflowId: step.workflowId,
          step: step.stepNo,
          agent: step.caller.agentId,
          kind: step.kind,
          server: step.server,
          tool: step.target,
          outcome: o.outcome,
          reason: o.reason,
          durationMs: o.durationMs,
        },
        'step',
      );
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

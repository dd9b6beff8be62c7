/** Guard: a paused, tripped or killed workflow (or one under such an ancestor) makes no new calls; in-flight ones finish. */
import type { GuardCheck, Refusal, WorkflowControl, WorkflowState } from '../types.js';

export interface WorkflowStateGuardOptions {
  workflows: Pick<WorkflowControl, 'state'>;
  /** Ancestors of a workflow, nearest first, so pausing a workflow covers its descendants. */
  ancestorsOf?: (workflowId: string) => readonly string[];
}

type StoppedState = Extract<WorkflowState, 'paused' | 'tripped' | 'killed'>;

function isStopped(state: WorkflowState | undefined): state is StoppedState {
  return state === 'paused' || state === 'tripped' || state === 'killed';
}

/** What happened, and what to do about it, per stopped state. */
function explain(stoppedId: string, state: StoppedState): string {
  const resume = `an admin can resume it with POST /admin/api/workflows/${stoppedId}/resume`;
  switch (state) {
    case 'paused':
      return `is paused by an admin; ${resume}.`;
    case 'tripped':
      return `was stopped by a safety limit (see the workflow's state in the admin console for why); ${resume} once the cause is fixed.`;
    case 'killed':
      return `was killed by an admin and accepts no more calls; start a new session to begin a new workflow.`;
  }
}

export function workflowPausedRefusal(workflowId: string, stoppedId: string, state: StoppedState): Refusal {
  const subject = stoppedId === workflowId ? `Workflow ${workflowId}` : `Workflow ${workflowId} belongs to workflow ${stoppedId}, which`;
  return {
    reason: 'workflow_paused',
    message: `${subject} ${explain(stoppedId, state)}`,
    data: stoppedId === workflowId ? { workflowId, state } : { workflowId, state, stoppedWorkflowId: stoppedId },
  };
}

export function createWorkflowStateGuard(opts: WorkflowStateGuardOptions): GuardCheck {
  const { workflows, ancestorsOf } = opts;
  return (step) => {
    const own = workflows.state(step.workflowId);
    if (isStopped(own)) return workflowPausedRefusal(step.workflowId, step.workflowId, own);
    // A delegated token's own workflow stops it wherever its step was placed.
    const bound = step.caller.workflowId;
    if (bound !== undefined && bound !== step.workflowId) {
      const s = workflows.state(bound);
      if (isStopped(s)) return workflowPausedRefusal(step.workflowId, bound, s);
    }
    if (!ancestorsOf) return undefined;
    for (const ancestor of ancestorsOf(step.workflowId)) {
      const s = workflows.state(ancestor);
      if (isStopped(s)) return workflowPausedRefusal(step.workflowId, ancestor, s);
    }
    return undefined;
  };
}

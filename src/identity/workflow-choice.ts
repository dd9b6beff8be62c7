/**
 * Which workflow a request joins. A delegated token is bound to the workflow it was minted in (`wf`): no header moves
 * it elsewhere, so pausing or killing that workflow stops the token everywhere. Other callers may name a workflow
 * with X-Workflow-Id when their manifest grants it (canSetWorkflow).
 */
import type { Caller } from '../gateway/types.js';

export type WorkflowChoice = { ok: true; workflowId: string | undefined } | { ok: false; workflowId: string; message: string };

export function chooseWorkflow(caller: Caller, requested: string | undefined, mayJoin: ((caller: Caller) => boolean) | undefined): WorkflowChoice {
  const bound = caller.workflowId;
  if (bound !== undefined) {
    if (requested && requested !== bound) {
      return {
        ok: false,
        workflowId: bound,
        message: `This delegated token belongs to workflow ${bound} and cannot join another one; drop the X-Workflow-Id header (or send X-Workflow-Id: ${bound}).`,
      };
    }
    return { ok: true, workflowId: bound };
  }
  return { ok: true, workflowId: requested && mayJoin?.(caller) ? requested : undefined };
}

/**
 * Workflows: the registry of workflows, their states and their step numbers. The gateway asks for a state and a step
 * number on every call, so those answer synchronously: a shared implementation serves states from a replica-local
 * copy it keeps current (pub/sub) and allocates step numbers from blocks it leases, so numbers stay unique and
 * increasing per workflow across replicas. State changes are persisted before listeners hear of them.
 */
import type { WorkflowControl, WorkflowState } from '../gateway/types.js';

export type WorkflowKind = 'mcp' | 'a2a' | 'model';
export type WorkflowListener = (workflowId: string, state: WorkflowState, why?: string) => void;

/** What every workflow store implements; the rules below are shared by all of them. */
export type WorkflowStore = WorkflowControl;

/** A workflow id a client may name (X-Workflow-Id, a token's `wf`). */
export const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export const WORKFLOW_STATES: readonly WorkflowState[] = ['active', 'paused', 'tripped', 'killed', 'done'];

/** Which state changes are legal; `killed` is final, and a `done` workflow can only be killed (or rejoined by begin()). */
const TRANSITIONS: Readonly<Record<WorkflowState, readonly WorkflowState[]>> = {
  active: ['paused', 'tripped', 'killed', 'done'],
  paused: ['active', 'tripped', 'killed', 'done'],
  tripped: ['active', 'paused', 'killed', 'done'],
  done: ['killed'],
  killed: [],
};

export function canTransition(from: WorkflowState, to: WorkflowState): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

export type WorkflowErrorCode = 'unknown_workflow' | 'illegal_transition' | 'invalid_id';

/** Thrown by setState/begin; the admin API maps unknown_workflow to 404, illegal_transition to 409, invalid_id to 400. */
export class WorkflowError extends Error {
  override readonly name = 'WorkflowError';
  constructor(
    readonly code: WorkflowErrorCode,
    message: string,
  ) {
    super(message);
  }
}


/** Change a state where nobody waits for the answer: an embedded store stays synchronous, a shared one's rejection goes to onError. */
export function setStateQuietly(store: Pick<WorkflowControl, 'setState'>, id: string, state: WorkflowState, why: string | undefined, onError: (err: Error) => void): void {
  try {
    const r = store.setState(id, state, why);
    if (r instanceof Promise) r.catch(onError);
  } catch (err) {
    onError(err as Error);
  }
}

/** Workflows in process memory, for tools that run without a data directory and for tests; same rules as the registry. */
import { randomUUID } from 'node:crypto';
import type { Caller, WorkflowState } from '../../gateway/types.js';
import { canTransition, WORKFLOW_ID, WorkflowError, type WorkflowKind, type WorkflowListener, type WorkflowStore } from '../workflows.js';

interface Entry {
  state: WorkflowState;
  lastStep: number;
}

export class MemoryWorkflows implements WorkflowStore {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners: WorkflowListener[] = [];

  /** Start a workflow, or join an existing one (a `done` one becomes active again). */
  begin(init: { caller: Caller; kind: WorkflowKind; id?: string }): string {
    if (init.id !== undefined && !WORKFLOW_ID.test(init.id)) {
      throw new WorkflowError('invalid_id', `workflow id "${init.id}" must match ${WORKFLOW_ID.source}; omit it to start a new workflow`);
    }
    const id = init.id ?? randomUUID();
    const existing = this.entries.get(id);
    if (!existing) this.entries.set(id, { state: 'active', lastStep: 0 });
    else if (existing.state === 'done') this.apply(id, existing, 'active', 'rejoined');
    return id;
  }

  /** Next step number (1-based); an id never begun is started implicitly, so a step is never lost. */
  nextStep(id: string): number {
    let e = this.entries.get(id);
    if (!e) this.entries.set(id, (e = { state: 'active', lastStep: 0 }));
    return ++e.lastStep;
  }

  state(id: string): WorkflowState | undefined {
    return this.entries.get(id)?.state;
  }

  setState(id: string, state: WorkflowState, why?: string): void {
    const e = this.entries.get(id);
    if (!e) throw new WorkflowError('unknown_workflow', `no workflow "${id}"; list them with GET /admin/api/workflows`);
    if (e.state === state) return;
    if (!canTransition(e.state, state)) throw new WorkflowError('illegal_transition', `workflow ${id} is ${e.state} and cannot become ${state}`);
    this.apply(id, e, state, why);
  }

  onStateChange(listener: WorkflowListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private apply(id: string, e: Entry, state: WorkflowState, why: string | undefined): void {
    e.state = state;
    for (const l of [...this.listeners]) {
      try {
        l(id, state, why);
      } catch {
        // One listener failing must not keep the others from hearing of the change.
      }
    }
  }
}

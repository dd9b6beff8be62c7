/** An in-memory workflow registry, for tools that run without a data directory (and as the reference behaviour). */
import { randomUUID } from 'node:crypto';
import type { Caller, WorkflowControl, WorkflowState } from './types.js';

export class MemoryWorkflows implements WorkflowControl {
  private readonly steps = new Map<string, number>();
  private readonly states = new Map<string, WorkflowState>();
  private readonly listeners: Array<(id: string, s: WorkflowState, why?: string) => void> = [];

  begin(init: { caller: Caller; kind: 'mcp' | 'a2a' | 'model'; id?: string }): string {
    const id = init.id ?? randomUUID();
    if (!this.states.has(id)) {
      this.states.set(id, 'active');
      this.steps.set(id, 0);
    }
    return id;
  }

  nextStep(id: string): number {
    const n = (this.steps.get(id) ?? 0) + 1;
    this.steps.set(id, n);
    return n;
  }

  state(id: string): WorkflowState | undefined {
    return this.states.get(id);
  }

  setState(id: string, state: WorkflowState, why?: string): void {
    this.states.set(id, state);
    for (const l of this.listeners) l(id, state, why);
  }

  onStateChange(listener: (id: string, s: WorkflowState, why?: string) => void): void {
    this.listeners.push(listener);
  }
}

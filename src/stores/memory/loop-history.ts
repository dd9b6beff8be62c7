/** Loop histories in process memory; the least recently active workflows are forgotten first. */
import { LRUCache } from 'lru-cache';
import type { LoopHistory, LoopHistoryStore } from '../loop-history.js';

const SWEEP_MIN = 512;

export class MemoryLoopHistory implements LoopHistoryStore {
  private readonly histories: LRUCache<string, LoopHistory>;

  constructor(opts: { maxWorkflows?: number } = {}) {
    this.histories = new LRUCache<string, LoopHistory>({ max: opts.maxWorkflows ?? 10_000 });
  }

  get(workflowId: string): LoopHistory | undefined {
    return this.histories.get(workflowId);
  }

  open(workflowId: string): LoopHistory {
    let h = this.histories.get(workflowId);
    if (!h) this.histories.set(workflowId, (h = { byKey: new Map(), recent: [], sweepAt: SWEEP_MIN }));
    return h;
  }

  changed(): void {}

  delete(workflowId: string): void {
    this.histories.delete(workflowId);
  }
}

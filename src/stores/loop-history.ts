/**
 * Recent calls per workflow, for loop detection: timestamps per call key and the last calls in order. The detector
 * (src/limits/loop.ts) reads a history, decides, and reports what it changed; a store only keeps histories.
 */
import type { Awaitable } from './types.js';

export interface LoopCall {
  tool: string;
  args: Record<string, unknown>;
}

export interface LoopCallRecord {
  key: string;
  call: LoopCall;
  at: number;
}

export interface LoopHistory {
  /** Recent timestamps per call key, oldest first, at most `sameCall` of them. */
  byKey: Map<string, number[]>;
  /** Last calls, oldest first, long enough to see 3 × (cycle + 1) calls. */
  recent: LoopCallRecord[];
  /** Size of byKey at which stale keys are swept next. */
  sweepAt: number;
}

export interface LoopHistoryStore {
  get(workflowId: string): Awaitable<LoopHistory | undefined>;
  /** The workflow's history, created empty when it has none. */
  open(workflowId: string): Awaitable<LoopHistory>;
  /** The detector changed this history (a shared store writes it back). */
  changed(workflowId: string, history: LoopHistory): Awaitable<void>;
  /** Forget a workflow's history. */
  delete(workflowId: string): Awaitable<void>;
}

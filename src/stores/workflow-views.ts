/**
 * What the console shows of workflows, whichever store answers (SQLite: stores/sqlite/workflows.ts, PostgreSQL:
 * stores/postgres/audit/console.ts): summaries, the step tree and its paging rules.
 */
import type { WorkflowState } from '../gateway/types.js';
import type { ModelFields } from '../audit/model-columns.js';
import type { Awaitable } from './types.js';

export interface WorkflowSummary {
  id: string;
  agent: string;
  user: string | null;
  state: WorkflowState;
  kind: string;
  startedAt: string;
  endedAt: string | null;
  /** Steps allocated so far. */
  steps: number;
  traceparent: string | null;
  why: string | null;
}

export interface WorkflowStepView {
  step: number;
  parentStep: number | null;
  agent: string;
  user: string | null;
  kind: string;
  server: string | null;
  tool: string;
  outcome: string;
  reason: string | null;
  startedAt: string;
  durationMs: number;
  bytes: number | null;
  tokens: number | null;
  /** Model calls: model, cost and the rest of the model fields (see audit/model-columns.ts). */
  model?: ModelFields;
  children?: WorkflowStepView[];
}

/** One workflow with its steps in step order, plus the same steps nested under their parent step. */
export interface WorkflowTree extends Omit<WorkflowSummary, 'steps'> {
  stepCount: number;
  steps: WorkflowStepView[];
  tree: WorkflowStepView[];
  /** More steps follow: pass this as afterStep for the next page; null on the last page. */
  nextAfterStep: number | null;
}

/** Steps one tree answer holds at most (and by default). */
export const MAX_TREE_STEPS = 1000;

export interface WorkflowListFilter {
  agent?: string;
  state?: WorkflowState;
  /** Epoch ms bounds on startedAt, inclusive. */
  since?: number;
  until?: number;
  limit?: number;
  cursor?: string;
}

/** A session that never made a step is no workflow to look at: listed once it has a step, or an operator acted on it. */
export const SHOWN = "(step_count > 0 OR state IN ('paused', 'tripped', 'killed'))";

/** Keyset paging by step number: rows sharing the boundary step go together onto the next page (unless they fill this one). */
export function stepPage<T extends { step: number }>(rows: T[], limit: number): { rows: T[]; nextAfterStep: number | null } {
  if (rows.length <= limit) return { rows, nextAfterStep: null };
  let end = limit;
  while (end > 0 && rows[end - 1]!.step === rows[limit]!.step) end--;
  if (end === 0) end = limit;
  return { rows: rows.slice(0, end), nextAfterStep: rows[end - 1]!.step };
}

/** Group steps under their parent step; steps whose parent is absent (or pruned) become roots. */
export function nest(steps: readonly WorkflowStepView[]): WorkflowStepView[] {
  const byStep = new Map<number, WorkflowStepView>();
  for (const s of steps) byStep.set(s.step, { ...s });
  const roots: WorkflowStepView[] = [];
  for (const node of byStep.values()) {
    const parent = node.parentStep !== null && node.parentStep < node.step ? byStep.get(node.parentStep) : undefined;
    if (parent) (parent.children ??= []).push(node);
    else roots.push(node);
  }
  return roots;
}

/** What the admin API reads and does with workflows: the SQLite registry, or PgAuditConsole's reads with PgWorkflows' setState. */
export interface WorkflowAdmin {
  get(workflowId: string): Awaitable<WorkflowSummary | undefined>;
  list(filter?: WorkflowListFilter): Awaitable<{ workflows: WorkflowSummary[]; nextCursor: string | null }>;
  tree(workflowId: string, page?: { afterStep?: number; limit?: number }): Awaitable<WorkflowTree | undefined>;
  setState(workflowId: string, state: WorkflowState, why?: string): Awaitable<void>;
}

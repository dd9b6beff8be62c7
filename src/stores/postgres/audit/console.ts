/**
 * The console's reads on PostgreSQL: workflow list and tree (the workflows table of stores/postgres/workflows.ts joined
 * with the shared trail) and model spend, answering the same types as the SQLite registry so the admin API takes either.
 */
import type { WorkflowState } from '../../../gateway/types.js';
import { encodeCursor, pageSize } from '../../../audit/query.js';
import { stepView, workflowSummary as summary, type StepRow, type WorkflowRow } from '../../rows.js';
import type { SpendBucket, SpendDimension, SpendReport } from '../../spend.js';
import { MAX_TREE_STEPS, nest, SHOWN, stepPage, workflowListWhere, type WorkflowListFilter, type WorkflowSummary, type WorkflowTree } from '../../workflow-views.js';
import type { PgQueryable } from './rows.js';
import { queryPgSpend } from './spend.js';

const WORKFLOW_COLUMNS = 'seq, id, agent, "user", state, kind, started_at, ended_at, step_count, traceparent, why';
export class PgAuditConsole {
  /** `flush` writes this replica's queued steps first, so what it just recorded shows. */
  constructor(
    private readonly q: PgQueryable,
    private readonly flush: () => Promise<void> = async () => undefined,
  ) {}

  async get(workflowId: string): Promise<WorkflowSummary | undefined> {
    const row = (await this.q.query<WorkflowRow>(`SELECT ${WORKFLOW_COLUMNS} FROM workflows WHERE id = $1`, [workflowId])).rows[0];
    return row ? summary(row) : undefined;
  }

  /** Workflows newest first, keyset-paged on seq. Throws InvalidQueryError for a bad filter or cursor. */
  async list(filter: WorkflowListFilter = {}): Promise<{ workflows: WorkflowSummary[]; nextCursor: string | null }> {
    const limit = pageSize(filter.limit);
    const { clauses, params } = workflowListWhere(filter);
    let n = 0;
    const where = clauses.map((c) => c.replace('?', () => `$${++n}`)).join(' AND ');
    await this.flush();
    const rows = (await this.q.query<WorkflowRow>(`SELECT ${WORKFLOW_COLUMNS} FROM workflows WHERE ${where} ORDER BY seq DESC LIMIT $${n + 1}`, [...params, limit + 1])).rows;
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return { workflows: page.map(summary), nextCursor: more && last ? encodeCursor('w', Number(last.seq)) : null };
  }

  /** The workflow with its recorded steps from every replica, a page of steps at a time; undefined when unknown. */
  async tree(workflowId: string, page: { afterStep?: number; limit?: number } = {}): Promise<WorkflowTree | undefined> {
    const limit = page.limit ?? MAX_TREE_STEPS;
    await this.flush();
    const found = await this.get(workflowId);
    if (!found) return undefined;
    const { steps: stepCount, ...rest } = found;
    const res = await this.q.query<StepRow>(
      `SELECT step, parent_step, agent, "user", kind, server, tool, outcome, reason, time, duration_ms, bytes, tokens, model, cost_usd, model_info
       FROM audit WHERE workflow_id = $1 AND step > $2 ORDER BY step, id LIMIT $3`,
      [workflowId, page.afterStep ?? -1, limit + 1],
    );
    const { rows, nextAfterStep } = stepPage(res.rows, limit);
    const steps = rows.map(stepView);
    return { ...rest, stepCount, steps, tree: nest(steps), nextAfterStep };
  }

  /** Listed workflows per state, for the active-workflows gauge. */
  async countByState(): Promise<Record<WorkflowState, number>> {
    const counts: Record<WorkflowState, number> = { active: 0, paused: 0, tripped: 0, killed: 0, done: 0 };
    const res = await this.q.query<{ state: WorkflowState; n: number }>(`SELECT state, count(*)::int AS n FROM workflows WHERE ${SHOWN} GROUP BY state`);
    for (const { state, n } of res.rows) if (state in counts) counts[state] = n;
    return counts;
  }

  /** Model spend per model, agent or team (GET /admin/api/spend). Throws InvalidQueryError for a bad range. */
  async spend(by: SpendDimension, range: { from?: number; to?: number; bucket?: SpendBucket }, now?: number): Promise<SpendReport> {
    await this.flush();
    return queryPgSpend(this.q, by, range, now);
  }
}

/**
 * The console's reads on PostgreSQL: workflow list and tree (the workflows table of stores/postgres/workflows.ts joined
 * with the shared trail) and model spend, answering the same types as the SQLite registry so the admin API takes either.
 */
import type { WorkflowState } from '../../../gateway/types.js';
import { decodeCursor, encodeCursor, InvalidQueryError, pageSize } from '../../../audit/query.js';
import { modelFields } from '../../../audit/model-columns.js';
import type { SpendBucket, SpendDimension, SpendReport } from '../../spend.js';
import { MAX_TREE_STEPS, nest, SHOWN, stepPage, type WorkflowListFilter, type WorkflowStepView, type WorkflowSummary, type WorkflowTree } from '../../workflow-views.js';
import { WORKFLOW_STATES } from '../../workflows.js';
import type { PgQueryable } from './rows.js';
import { queryPgSpend } from './spend.js';

interface WorkflowRow {
  seq: string;
  id: string;
  agent: string;
  user: string | null;
  state: WorkflowState;
  kind: string;
  started_at: string;
  ended_at: string | null;
  step_count: number;
  traceparent: string | null;
  why: string | null;
}

interface StepRow {
  step: number;
  parent_step: number | null;
  agent: string;
  user: string | null;
  kind: string;
  server: string | null;
  tool: string;
  outcome: string;
  reason: string | null;
  time: string;
  duration_ms: number;
  bytes: string | null;
  tokens: string | null;
  model: string | null;
  cost_usd: number | null;
  model_info: string | null;
}

const WORKFLOW_COLUMNS = 'seq, id, agent, "user", state, kind, started_at, ended_at, step_count, traceparent, why';
const iso = (ms: string | null): string | null => (ms === null ? null : new Date(Number(ms)).toISOString());
const num = (v: string | null): number | null => (v === null ? null : Number(v));

function summary(row: WorkflowRow): WorkflowSummary {
  return {
    id: row.id,
    agent: row.agent,
    user: row.user,
    state: row.state,
    kind: row.kind,
    startedAt: iso(row.started_at) as string,
    endedAt: iso(row.ended_at),
    steps: row.step_count,
    traceparent: row.traceparent,
    why: row.why,
  };
}

function stepView(s: StepRow): WorkflowStepView {
  return {
    step: s.step,
    parentStep: s.parent_step,
    agent: s.agent,
    user: s.user,
    kind: s.kind,
    server: s.server,
    tool: s.tool,
    outcome: s.outcome,
    reason: s.reason,
    startedAt: new Date(Number(s.time)).toISOString(),
    durationMs: s.duration_ms,
    bytes: num(s.bytes),
    tokens: num(s.tokens),
    ...(s.model !== null ? { model: modelFields(s) } : {}),
  };
}

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
    const clauses: string[] = [SHOWN];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown): void => {
      params.push(v);
      clauses.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.agent !== undefined) add('agent = ?', filter.agent);
    if (filter.state !== undefined) {
      if (!WORKFLOW_STATES.includes(filter.state)) throw new InvalidQueryError(`state must be one of ${WORKFLOW_STATES.join(', ')}, got "${filter.state}"`);
      add('state = ?', filter.state);
    }
    if (filter.since !== undefined) add('started_at >= ?', filter.since);
    if (filter.until !== undefined) add('started_at <= ?', filter.until);
    if (filter.cursor !== undefined) add('seq < ?', decodeCursor('w', filter.cursor));
    await this.flush();
    params.push(limit + 1);
    const rows = (await this.q.query<WorkflowRow>(`SELECT ${WORKFLOW_COLUMNS} FROM workflows WHERE ${clauses.join(' AND ')} ORDER BY seq DESC LIMIT $${params.length}`, params)).rows;
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

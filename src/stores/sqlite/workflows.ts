/** The workflow registry: workflow rows and states in SQLite, step numbers allocated in memory and persisted in batches. */
import { randomUUID } from 'node:crypto';
import type { Caller, WorkflowState } from '../../gateway/types.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Db } from './db.js';
import { decodeCursor, encodeCursor, InvalidQueryError, pageSize } from '../../audit/query.js';
import type { AuditStore, FlushWork } from './audit/store.js';
import type { SqlStatement } from './audit/batch.js';
import { canTransition, WORKFLOW_ID, WORKFLOW_STATES, WorkflowError, type WorkflowKind, type WorkflowListener, type WorkflowStore } from '../workflows.js';
import { modelFields } from '../../audit/model-columns.js';
import { MAX_TREE_STEPS, nest, SHOWN, stepPage, type WorkflowListFilter, type WorkflowStepView, type WorkflowSummary, type WorkflowTree } from '../workflow-views.js';
import './model-columns.js';

/** Step counters ride in the audit writer's flush transaction (see persistStepCounts). */
const SAVE_STEPS = 'UPDATE workflows SET step_count = max(step_count, ?) WHERE id = ?';

export { canTransition, WORKFLOW_STATES, WorkflowError, type WorkflowKind, type WorkflowListener } from '../workflows.js';


export { MAX_TREE_STEPS, type WorkflowListFilter, type WorkflowStepView, type WorkflowSummary, type WorkflowTree } from '../workflow-views.js';

interface WorkflowRow {
  seq: number;
  id: string;
  agent: string;
  user: string | null;
  state: WorkflowState;
  kind: string;
  started_at: number;
  ended_at: number | null;
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
  time: number;
  duration_ms: number;
  bytes: number | null;
  tokens: number | null;
  model: string | null;
  cost_usd: number | null;
  model_info: string | null;
}

/** What the registry keeps per workflow it has touched. */
interface CachedWorkflow {
  id: string;
  state: WorkflowState;
  /** Last step number handed out. */
  lastStep: number;
  /** Last step number known to be in the workflows row. */
  persistedStep: number;
}

const MAX_CACHED = 10_000;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class WorkflowRegistry implements WorkflowStore {
  private readonly cache = new Map<string, CachedWorkflow>();
  private readonly dirty = new Set<CachedWorkflow>();
  private readonly listeners: WorkflowListener[] = [];
  private readonly logger: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly stmts;

  constructor(
    private readonly db: Db,
    private readonly store: AuditStore,
    opts: { logger?: Pick<Logger, 'warn' | 'error'> } = {},
  ) {
    this.logger = opts.logger;
    this.stmts = {
      get: db.prepare<[string], WorkflowRow>('SELECT * FROM workflows WHERE id = ?'),
      maxAuditStep: db.prepare<[string], { max: number | null }>('SELECT max(step) AS max FROM audit WHERE workflow_id = ?'),
      insert: db.prepare(
        `INSERT OR IGNORE INTO workflows (id, agent, "user", state, kind, started_at, step_count, traceparent)
         VALUES (?, ?, ?, 'active', ?, ?, 0, ?)`,
      ),
      setState: db.prepare('UPDATE workflows SET state = ?, why = ?, ended_at = ? WHERE id = ?'),
      steps: db.prepare<[string, number, number], StepRow>(
        `SELECT step, parent_step, agent, "user", kind, server, tool, outcome, reason, time, duration_ms, bytes, tokens,
           model, cost_usd, model_info
         FROM audit WHERE workflow_id = ? AND step > ? ORDER BY step, id LIMIT ?`,
      ),
      byTrace: db.prepare<[string], { id: string }>(
        'SELECT id FROM workflows WHERE substr(traceparent, 4, 32) = ? AND traceparent IS NOT NULL ORDER BY seq DESC LIMIT 1',
      ),
      countByState: db.prepare<[], { state: WorkflowState; n: number }>(`SELECT state, count(*) AS n FROM workflows WHERE ${SHOWN} GROUP BY state`),
    };
    // Step counters ride along in the audit writer's transaction: no extra write per step.
    store.onFlush(() => this.persistStepCounts());
  }

  /**
   * Start a workflow, or join it when `id` names an existing one (a delegated token's `wf`, an allowed X-Workflow-Id).
   * Joining a `done` workflow makes it active again; joining a killed or paused one keeps its state, so guards refuse.
   */
  begin(init: { caller: Caller; kind: WorkflowKind; id?: string; traceparent?: string }): string {
    if (init.id !== undefined) {
      if (!WORKFLOW_ID.test(init.id)) {
        throw new WorkflowError('invalid_id', `workflow id "${init.id}" must match ${WORKFLOW_ID.source}; omit it to start a new workflow`);
      }
      const existing = this.load(init.id);
      if (existing) {
        if (existing.state === 'done') this.applyState(existing, 'active', 'rejoined');
        return existing.id;
      }
    }
    const id = init.id ?? randomUUID();
    this.stmts.insert.run(id, init.caller.agentId, init.caller.user ?? null, init.kind, Date.now(), init.traceparent ?? null);
    return this.load(id)?.id ?? id;
  }

  /** Next step number (1-based). An id never begun is started implicitly, so a step is never lost. */
  nextStep(workflowId: string): number {
    let entry = this.cache.get(workflowId) ?? this.load(workflowId);
    if (!entry) {
      this.logger?.warn({ workflowId }, 'nextStep for a workflow that was never begun; starting it implicitly');
      this.stmts.insert.run(workflowId, 'unknown', null, 'mcp', Date.now(), null);
      entry = this.load(workflowId) as CachedWorkflow;
    }
    entry.lastStep++;
    if (this.dirty.size === 0) this.store.requestFlush();
    this.dirty.add(entry);
    return entry.lastStep;
  }

  state(workflowId: string): WorkflowState | undefined {
    return (this.cache.get(workflowId) ?? this.load(workflowId))?.state;
  }

  /** Change state, persisted before listeners hear of it. Same state is a no-op; throws WorkflowError otherwise when illegal or unknown. */
  setState(workflowId: string, state: WorkflowState, why?: string): void {
    const entry = this.cache.get(workflowId) ?? this.load(workflowId);
    if (!entry) throw new WorkflowError('unknown_workflow', `no workflow "${workflowId}"; list them with GET /admin/api/workflows`);
    if (entry.state === state) return;
    if (!canTransition(entry.state, state)) {
      throw new WorkflowError('illegal_transition', `workflow ${workflowId} is ${entry.state} and cannot become ${state}`);
    }
    this.applyState(entry, state, why);
  }

  onStateChange(listener: WorkflowListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  get(workflowId: string): WorkflowSummary | undefined {
    const row = this.stmts.get.get(workflowId);
    return row ? this.summary(row) : undefined;
  }

  /** Workflows newest first, keyset-paged. Throws InvalidQueryError for a bad filter or cursor. */
  list(filter: WorkflowListFilter = {}): { workflows: WorkflowSummary[]; nextCursor: string | null } {
    const limit = pageSize(filter.limit);
    this.store.flush(); // step counts of queued steps land with them
    const clauses: string[] = [SHOWN];
    const params: Array<string | number> = [];
    if (filter.agent !== undefined) (clauses.push('agent = ?'), params.push(filter.agent));
    if (filter.state !== undefined) {
      if (!WORKFLOW_STATES.includes(filter.state)) {
        throw new InvalidQueryError(`state must be one of ${WORKFLOW_STATES.join(', ')}, got "${filter.state}"`);
      }
      clauses.push('state = ?');
      params.push(filter.state);
    }
    if (filter.since !== undefined) (clauses.push('started_at >= ?'), params.push(filter.since));
    if (filter.until !== undefined) (clauses.push('started_at <= ?'), params.push(filter.until));
    if (filter.cursor !== undefined) (clauses.push('seq < ?'), params.push(decodeCursor('w', filter.cursor)));
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.db
      .prepare<Array<string | number>, WorkflowRow>(`SELECT * FROM workflows ${where} ORDER BY seq DESC LIMIT ?`)
      .all(...params, limit + 1);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return { workflows: page.map((r) => this.summary(r)), nextCursor: more && last ? encodeCursor('w', last.seq) : null };
  }

  /** The agent that started a workflow (model route: an X-Workflow-Id of the caller's own agent or chain). */
  agentOf(workflowId: string): string | undefined {
    return this.stmts.get.get(workflowId)?.agent;
  }

  /** The newest workflow whose traceparent carries this W3C trace id (32 hex digits). */
  byTraceId(traceId: string): string | undefined {
    if (!/^[0-9a-f]{32}$/.test(traceId)) return undefined;
    return this.stmts.byTrace.get(traceId)?.id;
  }

  /** The workflow with its recorded steps (queued ones are flushed first); undefined when unknown. */
  tree(workflowId: string, page: { afterStep?: number; limit?: number } = {}): WorkflowTree | undefined {
    this.store.flush();
    const row = this.stmts.get.get(workflowId);
    if (!row) return undefined;
    const { steps: stepCount, ...summary } = this.summary(row);
    const { rows, nextAfterStep } = stepPage(this.stmts.steps.all(workflowId, page.afterStep ?? -1, (page.limit ?? MAX_TREE_STEPS) + 1), page.limit ?? MAX_TREE_STEPS);
    const steps = rows.map(
      (s): WorkflowStepView => ({
        step: s.step,
        parentStep: s.parent_step,
        agent: s.agent,
        user: s.user,
        kind: s.kind,
        server: s.server,
        tool: s.tool,
        outcome: s.outcome,
        reason: s.reason,
        startedAt: new Date(s.time).toISOString(),
        durationMs: s.duration_ms,
        bytes: s.bytes,
        tokens: s.tokens,
        ...(s.model !== null ? { model: modelFields(s) } : {}),
      }),
    );
    return { ...summary, stepCount, steps, tree: nest(steps), nextAfterStep };
  }

  /** Workflows per state, for the active-workflows gauge. */
  countByState(): Record<WorkflowState, number> {
    const counts: Record<WorkflowState, number> = { active: 0, paused: 0, tripped: 0, killed: 0, done: 0 };
    for (const { state, n } of this.stmts.countByState.all()) if (state in counts) counts[state] = n;
    // Workflows whose first steps are not written yet count too.
    for (const e of this.dirty) if (e.persistedStep === 0 && e.lastStep > 0 && (e.state === 'active' || e.state === 'done')) counts[e.state]++;
    return counts;
  }

  private summary(row: WorkflowRow): WorkflowSummary {
    const cached = this.cache.get(row.id);
    return {
      id: row.id,
      agent: row.agent,
      user: row.user,
      state: cached?.state ?? row.state,
      kind: row.kind,
      startedAt: iso(row.started_at) as string,
      endedAt: iso(row.ended_at),
      steps: Math.max(row.step_count, cached?.lastStep ?? 0),
      traceparent: row.traceparent,
      why: row.why,
    };
  }

  private load(workflowId: string): CachedWorkflow | undefined {
    const cached = this.cache.get(workflowId);
    if (cached) return cached;
    const row = this.stmts.get.get(workflowId);
    if (!row) return undefined;
    // Resume numbering after both the persisted counter and any step already in the audit trail.
    const lastStep = Math.max(row.step_count, this.stmts.maxAuditStep.get(workflowId)?.max ?? 0);
    const entry: CachedWorkflow = { id: row.id, state: row.state, lastStep, persistedStep: lastStep };
    if (this.cache.size >= MAX_CACHED) this.evict();
    this.cache.set(row.id, entry);
    return entry;
  }

  /** Drop the oldest entries whose counters are persisted; they reload from the database on next use. */
  private evict(): void {
    const target = Math.floor(MAX_CACHED * 0.9);
    for (const [id, entry] of this.cache) {
      if (this.cache.size <= target) break;
      if (!this.dirty.has(entry)) this.cache.delete(id);
    }
  }

  private applyState(entry: CachedWorkflow, state: WorkflowState, why: string | undefined): void {
    const ended = state === 'killed' || state === 'done' ? Date.now() : null;
    this.stmts.setState.run(state, why ?? null, ended, entry.id);
    entry.state = state;
    for (const listener of [...this.listeners]) {
      try {
        listener(entry.id, state, why);
      } catch (err) {
        this.logger?.error({ err, workflowId: entry.id, state }, 'workflow state listener threw; other listeners still ran');
      }
    }
  }

  /** Runs inside the writer's transaction; the entries count as persisted only once it commits. */
  private persistStepCounts(): FlushWork | undefined {
    if (this.dirty.size === 0) return undefined;
    const saved: Array<[CachedWorkflow, number]> = [];
    const statements: SqlStatement[] = [];
    for (const entry of this.dirty) {
      if (entry.lastStep > entry.persistedStep) statements.push({ sql: SAVE_STEPS, params: [entry.lastStep, entry.id] });
      saved.push([entry, entry.lastStep]);
    }
    return {
      statements,
      committed: () => {
        for (const [entry, step] of saved) {
          entry.persistedStep = step;
          if (entry.lastStep === step) this.dirty.delete(entry);
        }
      },
    };
  }
}

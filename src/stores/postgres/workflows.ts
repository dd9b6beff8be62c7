/**
 * Workflows in the shared PostgreSQL store. Rows and states live in PostgreSQL; each replica keeps a local copy of the
 * states it knows so `state()` stays synchronous: the stopped ones (paused, tripped, killed) loaded at start, changes
 * heard on the control bus, and a catch-up read every half second for a message a replica missed. Step numbers come
 * from one atomic UPDATE per step, so they are unique and increase in allocation order across every replica
 * (docs/decisions/0031-workflow-step-numbers-across-replicas.md). A fresh workflow's row and a join go in with their
 * first step, plain finishes (active → done) are not broadcast (docs/decisions/0038-workflow-writes-per-call.md), and
 * the steps and finishes of concurrent calls share one statement (docs/decisions/0040-workflow-writes-grouped.md).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Caller, WorkflowState } from '../../gateway/types.js';
import type { ControlBus, ControlMessage } from '../bus.js';
import { canTransition, WORKFLOW_ID, WORKFLOW_STATES, WorkflowError, type WorkflowKind, type WorkflowListener, type WorkflowStore } from '../workflows.js';
import { CatchUp } from './catch-up.js';
import { WorkflowWrites, type StepInit, type StepResult } from './workflow-finish.js';
import { NOW_MS } from './workflow-schema.js';
import type { Postgres, PostgresHealth } from './pool.js';

export { NOW_MS } from './workflow-schema.js';

export interface PgWorkflowsOptions {
  db: Postgres;
  bus: ControlBus;
  log?: Pick<Logger, 'warn' | 'error'>;
  /** How often the local copy re-reads recent state changes (default 500 ms; a bus message is the fast path). */
  catchUpMs?: number;
  /** Most workflow states kept locally; active and done ones beyond it are dropped first (default 100000). */
  maxLocal?: number;
}

interface Local {
  state: WorkflowState;
  /** The row's version this copy reflects; 0 while a begin() is not yet confirmed by the store. */
  version: number;
}

interface StateRow {
  id: string;
  state: WorkflowState;
  why: string | null;
  version: number;
}

/** Catch-up re-reads this much before the last read, so a change committed late (after a newer one) is not missed. */
const CATCH_UP_OVERLAP_MS = 2000;
const STOPPED = "state IN ('paused', 'tripped', 'killed')";
/** A fresh workflow's row waits this long for its first step to write it in the same statement, then is written alone. */
const UNWRITTEN_MS = 250;

interface BeginInit {
  caller: Caller;
  kind: WorkflowKind;
  traceparent?: string;
  /** Joined by id (X-Workflow-Id) rather than started here. */
  join?: boolean;
}

/**
 * One row with the server's clock even when nothing changed, so an idle read is one statement. Not a named statement:
 * a generic plan cannot know how recent `$1` is and would scan the whole table; this one is planned with its value.
 */
const READ_CHANGES = `SELECT w.id, w.state, w.why, w.version, ${NOW_MS} AS now FROM (SELECT 1) AS one
  LEFT JOIN workflows w ON w.changed_at >= $1`;

export class PgWorkflows implements WorkflowStore {
  private readonly db: Postgres;
  private readonly bus: ControlBus;
  private readonly log: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly maxLocal: number;
  private readonly local = new Map<string, Local>();
  /** The begin() write still in flight per workflow; steps and state changes of that workflow wait for it. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly listeners: WorkflowListener[] = [];
  private readonly unsubscribe: () => void;
  private lastRead = 0;
  private readonly rereads = new CatchUp(() => this.readChanges());
  /** Fresh or joined workflows whose row is not written yet, oldest first: their first step writes the whole row. */
  private readonly unwritten = new Map<string, BeginInit & { at: number }>();
  private readonly sweeper: NodeJS.Timeout;
  /** Steps and active → done changes of concurrent calls, written together; a done no longer active takes the one-row path. */
  private readonly finishing: WorkflowWrites;

  private constructor(opts: PgWorkflowsOptions) {
    this.db = opts.db;
    this.bus = opts.bus;
    this.log = opts.log;
    this.maxLocal = opts.maxLocal ?? 100_000;
    this.unsubscribe = this.bus.subscribe('workflow-state', (m) => this.heard(m));
    this.sweeper = setInterval(() => this.writeUnwritten(Date.now() - UNWRITTEN_MS), UNWRITTEN_MS);
    this.sweeper.unref();
    this.finishing = new WorkflowWrites(this.db, (row) => this.observe(row), (id, why) => this.write(id, 'done', why));
  }

  /** Open on a migrated database: loads the stopped workflows, then keeps the local copy current. */
  static async open(opts: PgWorkflowsOptions): Promise<PgWorkflows> {
    await opts.db.migrate();
    const store = new PgWorkflows(opts);
    try {
      const { rows } = await opts.db.query<StateRow & { now: string }>(`SELECT id, state, why, version, ${NOW_MS} AS now FROM workflows WHERE ${STOPPED}`);
      for (const r of rows) store.observe(r);
      const now = await opts.db.query<{ now: string }>(`SELECT ${NOW_MS} AS now`);
      store.lastRead = Number(now.rows[0]!.now);
    } catch (err) {
      store.unsubscribe();
      clearInterval(store.sweeper);
      throw err;
    }
    store.rereads.every(opts.catchUpMs ?? 500);
    return store;
  }

  /**
   * Start a workflow, or join it when `id` names one (on this replica or another). Joining a `done` workflow makes it
   * active again; joining a stopped one keeps its state, so guards refuse. The row is written in the background;
   * this workflow's steps and state changes wait for that write. A fresh id's row is written by its first step (one
   * statement instead of two), or alone within half a second when no step comes.
   */
  begin(init: { caller: Caller; kind: WorkflowKind; id?: string; traceparent?: string }): string {
    if (init.id !== undefined && !WORKFLOW_ID.test(init.id)) {
      throw new WorkflowError('invalid_id', `workflow id "${init.id}" must match ${WORKFLOW_ID.source}; omit it to start a new workflow`);
    }
    if (init.id === undefined) {
      const fresh = randomUUID();
      this.remember(fresh, { state: 'active', version: 0 });
      this.unwritten.set(fresh, { caller: init.caller, kind: init.kind, traceparent: init.traceparent, at: Date.now() });
      return fresh;
    }
    const id = init.id;
    const known = this.local.get(id);
    if (!known) this.remember(id, { state: 'active', version: 0 });
    else if (known.state === 'done') known.state = 'active'; // the store confirms, and listeners hear, once it is written
    // Joining one begun here and not yet written keeps its starter's row; otherwise the join waits for its first step
    // (one statement for both). A done queued here goes first in the group, so this join rejoins it.
    if (!this.unwritten.has(id)) {
      this.unwritten.set(id, { caller: init.caller, kind: init.kind, traceparent: init.traceparent, join: true, at: Date.now() });
    }
    return id;
  }

  /** Next step number (1-based), one atomic increment in the shared store; an id never begun is started implicitly. */
  async nextStep(workflowId: string): Promise<number> {
    const first = this.unwritten.get(workflowId);
    if (first) {
      this.unwritten.delete(workflowId);
      // A done queued here goes first in the group; any other write of this workflow in flight goes before.
      const before = this.finishing.has(workflowId) ? undefined : this.pending.get(workflowId);
      const ask = () => this.finishing.step(workflowId, stepInit(first));
      const written = (before ? before.then(ask) : ask()).then((r) => this.stepped(r));
      this.track(workflowId, written.then(() => undefined, () => undefined));
      return written;
    }
    await this.pending.get(workflowId);
    const r = await this.finishing.step(workflowId, { agent: 'unknown', user: null, kind: 'mcp', startedAt: Date.now(), traceparent: null, join: false });
    if (r.inserted) {
      this.log?.warn({ workflowId }, 'nextStep for a workflow that was never begun; starting it implicitly');
      if (!this.local.has(workflowId)) this.remember(workflowId, { state: 'active', version: 1 });
    }
    return r.step;
  }

  state(workflowId: string): WorkflowState | undefined {
    return this.local.get(workflowId)?.state;
  }

  /**
   * Change state in the shared store (one conditional UPDATE, so two replicas racing cannot both win an illegal
   * pair), then the local copy and listeners, then the bus. Same state is a no-op; rejects with WorkflowError when
   * illegal or unknown.
   */
  async setState(workflowId: string, state: WorkflowState, why?: string): Promise<void> {
    this.writeNow(workflowId);
    // Without a write in flight a done is queued at once, so changes asked for later come after it.
    const before = this.pending.get(workflowId);
    if (before) await before;
    const known = this.local.get(workflowId);
    if (known && known.version > 0 && known.state === state) return;
    if (state === 'done' && known?.state === 'active') {
      const done = this.finishing.finish(workflowId, why);
      this.track(workflowId, done.catch(() => undefined)); // this workflow's later writes wait for it
      return done;
    }
    return this.write(workflowId, state, why);
  }

  /** One conditional UPDATE; when it matches nothing, the row says whether it is unknown, already so, or illegal. */
  private async write(workflowId: string, state: WorkflowState, why?: string): Promise<void> {
    const from = WORKFLOW_STATES.filter((s) => s !== state && canTransition(s, state));
    const ended = state === 'killed' || state === 'done' ? Date.now() : null;
    // active → done is kept from the bus and the catch-up read: no guard refuses either state, and a rejoin announces itself.
    const { rows } = await this.db.query<StateRow & { quiet: boolean }>(
      `UPDATE workflows SET state = $2, why = $3, ended_at = $4, version = version + 1,
         changed_at = CASE WHEN $2 = 'done' AND state = 'active' THEN NULL ELSE ${NOW_MS} END
       WHERE id = $1 AND state = ANY($5::text[]) RETURNING id, state, why, version, changed_at IS NULL AS quiet`,
      [workflowId, state, why ?? null, ended, from],
    );
    if (rows[0]) {
      this.observe(rows[0]);
      if (!rows[0].quiet) this.publish(rows[0]);
      return;
    }
    const now = await this.db.query<StateRow>('SELECT id, state, why, version FROM workflows WHERE id = $1', [workflowId]);
    const row = now.rows[0];
    if (!row) throw new WorkflowError('unknown_workflow', `no workflow "${workflowId}"; list them with GET /admin/api/workflows`);
    this.observe(row);
    if (row.state === state) return;
    throw new WorkflowError('illegal_transition', `workflow ${workflowId} is ${row.state} and cannot become ${state}`);
  }

  onStateChange(listener: WorkflowListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The agent that started a workflow (the model route's X-Workflow-Id check); undefined when there is none. */
  async agentOf(workflowId: string): Promise<string | undefined> {
    this.writeNow(workflowId);
    await this.pending.get(workflowId);
    const { rows } = await this.db.query<{ agent: string }>('SELECT agent FROM workflows WHERE id = $1', [workflowId]);
    return rows[0]?.agent;
  }

  /** The newest workflow whose traceparent carries this W3C trace id (32 hex digits). */
  async byTraceId(traceId: string): Promise<string | undefined> {
    if (!/^[0-9a-f]{32}$/.test(traceId)) return undefined;
    this.writeUnwritten(Infinity);
    await Promise.all([...this.pending.values()]);
    const { rows } = await this.db.query<{ id: string }>(
      'SELECT id FROM workflows WHERE substr(traceparent, 4, 32) = $1 AND traceparent IS NOT NULL ORDER BY seq DESC LIMIT 1',
      [traceId],
    );
    return rows[0]?.id;
  }

  /** Write the rows still waiting for a first step and the finished ones, and wait for writes begun here to land. */
  async settled(): Promise<void> {
    this.writeUnwritten(Infinity);
    await this.finishing.flush();
    await Promise.all([...this.pending.values()]);
  }

  /** Re-read the state changes of the last moments now (the timer does this every catchUpMs). */
  catchUp(): Promise<void> {
    return this.rereads.now();
  }

  /** The shared store's reachability, for /readyz. */
  health(): PostgresHealth {
    return this.db.health();
  }

  async close(): Promise<void> {
    const reading = this.rereads.stop();
    clearInterval(this.sweeper);
    this.unsubscribe();
    await this.settled();
    await reading;
  }

  /** A failed read leaves lastRead as it was, so the next one covers the same window. */
  private async readChanges(): Promise<void> {
    const { rows } = await this.db.query<(StateRow | { [K in keyof StateRow]: null }) & { now: string }>(READ_CHANGES, [this.lastRead - CATCH_UP_OVERLAP_MS]);
    for (const r of rows) if (r.id !== null) this.observe(r);
    this.lastRead = Number(rows[0]!.now);
  }

  /** A first step's row as the store wrote it: the local copy takes it, and a rejoin is heard everywhere. */
  private stepped(r: StepResult): number {
    this.observe(r.row, true);
    if (r.rejoined) this.publish(r.row);
    return r.step;
  }

  /** Start writing this workflow's row now if it waits for a first step; its pending write covers it. */
  private writeNow(id: string): void {
    const init = this.unwritten.get(id);
    if (!init) return;
    this.unwritten.delete(id);
    const before = this.pending.get(id);
    if (init.join && this.finishing.has(id)) void this.finishing.flush(); // the done it rejoins goes first
    const begin = () => this.writeBegin(id, init, init.join ? Date.now() : init.at);
    this.track(id, (before ? before.then(begin) : begin()).catch((err: Error) => {
      this.log?.error({ workflowId: id, err: err.message }, 'could not record the workflow in PostgreSQL; its first step records it');
    }));
  }

  /** Write alone the rows of fresh workflows begun before `before` that no step has written. */
  private writeUnwritten(before: number): void {
    for (const [id, init] of this.unwritten) {
      if (init.at > before) break;
      this.writeNow(id);
    }
  }

  /** Insert, rejoin a done one, or read the state that stands, in one statement; a race with another writer reads again. */
  private async writeBegin(id: string, init: BeginInit, startedAt = Date.now()): Promise<void> {
    const { rows } = await this.db.query<StateRow & { rejoined: boolean; written: boolean }>(
      `WITH begun AS (
         INSERT INTO workflows (id, agent, "user", state, kind, started_at, traceparent) VALUES ($1, $2, $3, 'active', $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET state = 'active', why = 'rejoined', ended_at = NULL, version = workflows.version + 1, changed_at = ${NOW_MS}
           WHERE workflows.state = 'done'
         RETURNING id, state, why, version, (xmax <> 0) AS rejoined, true AS written)
       SELECT * FROM begun
       UNION ALL
       SELECT id, state, why, version, false, false FROM workflows WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM begun)`,
      [id, init.caller.agentId, init.caller.user ?? null, init.kind, startedAt, init.traceparent ?? null],
    );
    const row = rows[0];
    if (row?.written) {
      this.observe(row, true);
      if (row.rejoined) this.publish(row);
      return;
    }
    // It exists in a state other than done, and that state stands. A done seen here (or no row) is the statement's
    // snapshot racing another writer: read what was committed since.
    if (row && row.state !== 'done') return this.observe(row, true);
    const now = await this.db.query<StateRow>('SELECT id, state, why, version FROM workflows WHERE id = $1', [id]);
    if (now.rows[0]) this.observe(now.rows[0], true);
  }

  private track(id: string, write: Promise<void>): void {
    const before = this.pending.get(id);
    const chained = before ? before.then(() => write) : write;
    this.pending.set(id, chained);
    void chained.finally(() => {
      if (this.pending.get(id) === chained) this.pending.delete(id);
    });
  }

  private heard(m: ControlMessage): void {
    // Own messages too: a bus shared by two stores in one process carries one replica id, and versions make it idempotent.
    const { id, state, why, version } = m.data;
    if (typeof id !== 'string' || typeof state !== 'string' || !WORKFLOW_STATES.includes(state as WorkflowState) || typeof version !== 'number') {
      this.log?.warn({ data: m.data, from: m.from }, 'ignored a malformed workflow-state message; the catch-up read covers it');
      return;
    }
    this.observe({ id, state: state as WorkflowState, why: typeof why === 'string' ? why : null, version });
  }

  /** Take a state the store reported when it is newer than the local copy; listeners hear when it differs. */
  private observe(row: StateRow, confirmsBegin = false): void {
    const cur = this.local.get(row.id);
    if (cur && cur.version >= row.version && !(confirmsBegin && cur.version === 0)) return;
    const before = cur?.state;
    if (cur) {
      cur.state = row.state;
      cur.version = row.version;
    } else this.remember(row.id, { state: row.state, version: row.version });
    // A begin() already showed 'active' locally; listeners still hear a rejoin once it is written.
    const changed = before === undefined ? row.state !== 'active' : before !== row.state || (confirmsBegin && row.why === 'rejoined' && row.state === 'active');
    if (changed) this.notify(row.id, row.state, row.why ?? undefined);
  }

  private publish(row: StateRow): void {
    const data = { id: row.id, state: row.state, why: row.why, version: row.version };
    void Promise.resolve()
      .then(() => this.bus.publish('workflow-state', data))
      .catch((err: Error) => this.log?.warn({ workflowId: row.id, err: err.message }, 'could not announce a workflow state change; other replicas see it within a second'));
  }

  private remember(id: string, entry: Local): void {
    if (this.local.size >= this.maxLocal) {
      // Stopped states are what guards need; active and done ones reload on demand.
      for (const [k, v] of this.local) {
        if (this.local.size < this.maxLocal * 0.9) break;
        if (v.state === 'active' || v.state === 'done') this.local.delete(k);
      }
    }
    this.local.set(id, entry);
  }

  private notify(id: string, state: WorkflowState, why: string | undefined): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(id, state, why);
      } catch (err) {
        this.log?.error({ err, workflowId: id, state }, 'workflow state listener threw; other listeners still ran');
      }
    }
  }
}

/** The row a first step writes: the starter's (or joiner's) caller, kind and trace. */
function stepInit(init: BeginInit & { at: number }): StepInit {
  return {
    agent: init.caller.agentId,
    user: init.caller.user ?? null,
    kind: init.kind,
    startedAt: init.join ? Date.now() : init.at,
    traceparent: init.traceparent ?? null,
    join: init.join === true,
  };
}

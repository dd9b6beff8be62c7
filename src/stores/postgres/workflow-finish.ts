/**
 * Workflow writes of concurrent calls grouped into one statement (group commit): every step number asked for while
 * the previous group is in flight (a fresh workflow's row with its first step, a join with its first step, a plain
 * increment), and every active → done queued meanwhile (those wait at most FINISH_MS, since no guard waits for a
 * done). One statement is one transaction for the whole group, committed without waiting for its WAL flush: the next
 * synchronous commit (an audit flush, a pause or kill) makes it durable, WAL being flushed in order
 * (docs/decisions/0040-workflow-writes-grouped.md). A done whose row is no longer active (paused or killed on another
 * replica meanwhile) takes the store's one-row path, which publishes or refuses as a lone state change does.
 */
import type { WorkflowState } from '../../gateway/types.js';
import type { NamedStatement, Postgres } from './pool.js';
import { NOW_MS } from './workflow-schema.js';

const FINISH_MS = 50;

export interface FinishedRow {
  id: string;
  state: WorkflowState;
  why: string | null;
  version: number;
}

/** The row a step writes when the workflow has none yet. */
export interface StepInit {
  agent: string;
  user: string | null;
  kind: string;
  startedAt: number;
  traceparent: string | null;
  /** A join (X-Workflow-Id): a done row becomes active again ("rejoined"); otherwise the step only counts. */
  join: boolean;
}

export interface StepResult {
  step: number;
  row: FinishedRow;
  /** The statement inserted the row (nobody had written it). */
  inserted: boolean;
  /** A join that made a done row active again. */
  rejoined: boolean;
}

interface QueuedDone {
  why: string | null;
  ended: number;
  settle: Array<{ resolve: () => void; reject: (err: Error) => void }>;
}

interface QueuedStep {
  init: StepInit;
  settle: Array<{ resolve: (r: StepResult) => void; reject: (err: Error) => void }>;
}

type GroupRow = FinishedRow & { k: 'f' | 'j' | 's'; step_count: number; inserted: boolean; was: WorkflowState | null };

const STEP_COLUMNS = `unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::int[]) AS t (id, agent, u, kind, started, tp, n)`;
const rejoin = (then: string, otherwise: string) => `CASE WHEN workflows.state = 'done' THEN ${then} ELSE ${otherwise} END`;

const FIN = `fin AS (
  UPDATE workflows w SET state = 'done', why = d.why, ended_at = d.ended, version = w.version + 1, changed_at = NULL
  FROM unnest($9::text[], $10::text[], $11::bigint[]) AS d (id, why, ended)
  WHERE w.id = d.id AND w.state = 'active'
  RETURNING 'f' AS k, w.id, w.state, w.why, w.version, 0 AS step_count, false AS inserted)`;
const JOINED = `joined AS (
  INSERT INTO workflows (id, agent, "user", state, kind, started_at, traceparent, step_count)
  SELECT id, agent, u, 'active', kind, started, tp, n FROM ${STEP_COLUMNS} WHERE t.id = ANY($8::text[])
  ON CONFLICT (id) DO UPDATE SET step_count = workflows.step_count + excluded.step_count,
    state = ${rejoin("'active'", 'workflows.state')}, why = ${rejoin("'rejoined'", 'workflows.why')},
    ended_at = ${rejoin('NULL', 'workflows.ended_at')}, version = workflows.version + ${rejoin('1', '0')},
    changed_at = ${rejoin(NOW_MS, 'workflows.changed_at')}
  RETURNING 'j' AS k, id, state, why, version, step_count, (xmax = 0) AS inserted)`;
const stepped = (filtered: boolean) => `stepped AS (
  INSERT INTO workflows (id, agent, "user", state, kind, started_at, traceparent, step_count)
  SELECT id, agent, u, 'active', kind, started, tp, n FROM ${STEP_COLUMNS}${filtered ? ' WHERE NOT (t.id = ANY($8::text[]))' : ''}
  ON CONFLICT (id) DO UPDATE SET step_count = workflows.step_count + excluded.step_count
  RETURNING 's' AS k, id, state, why, version, step_count, (xmax = 0) AS inserted)`;

/**
 * One statement for a group: dones first (a join queued behind a done on this replica must find it done), then the
 * joins and plain steps, each id once (its steps counted together). `was` is the state before, from the statement's
 * snapshot, so a rejoin is told apart from a join of an active row. A group leaves out the parts it has nothing for
 * (and `was`, which only joins read): parts with empty arrays still cost the server their planning and execution, and
 * most groups are fresh steps and dones only. Each shape is its own named statement, planned once per connection.
 */
function groupStatement(parts: { dones: boolean; joins: boolean; steps: boolean }): NamedStatement {
  const ctes: string[] = [];
  const outs: string[] = [];
  if (parts.joins) ctes.push('was AS (SELECT id, state FROM workflows WHERE id = ANY($1::text[]))');
  if (parts.dones) ctes.push(FIN), outs.push('fin');
  if (parts.joins) ctes.push(JOINED), outs.push('joined');
  if (parts.steps) ctes.push(stepped(parts.joins)), outs.push('stepped');
  const text = parts.joins
    ? `WITH ${ctes.join(',\n')},\nout AS (${outs.map((o) => `SELECT * FROM ${o}`).join(' UNION ALL ')})\nSELECT out.*, was.state AS was FROM out LEFT JOIN was USING (id)`
    : `WITH ${ctes.join(',\n')}\n${outs.map((o) => `SELECT *, NULL::text AS was FROM ${o}`).join(' UNION ALL ')}`;
  const name = `switchyard-workflow-group${parts.dones ? '-f' : ''}${parts.joins ? '-j' : ''}${parts.steps ? '-s' : ''}`;
  return { name, text };
}

/**
 * A shape's statement, renumbered to name only the parameters it uses ($9 becomes $1 in a dones-only one), and which
 * of the whole statement's eleven parameters those are, in order.
 */
interface Shape {
  statement: NamedStatement;
  used: number[];
}

/** Every shape a group can take (dones, joins, other steps, each present or not), built once, by `${dones}${joins}${steps}`. */
const SHAPES = new Map<string, Shape>();
for (const dones of [false, true]) {
  for (const joins of [false, true]) {
    for (const steps of [false, true]) {
      if (!dones && !joins && !steps) continue;
      const { name, text } = groupStatement({ dones, joins, steps });
      const used = [...new Set([...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))].sort((x, y) => x - y);
      const renumbered = text.replace(/\$(\d+)/g, (_, n: string) => `$${used.indexOf(Number(n)) + 1}`);
      SHAPES.set(`${+dones}${+joins}${+steps}`, { statement: { name, text: renumbered }, used });
    }
  }
}

export class WorkflowWrites {
  private dones = new Map<string, QueuedDone>();
  private steps = new Map<string, QueuedStep>();
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Postgres,
    private readonly written: (row: FinishedRow) => void,
    private readonly alone: (id: string, why: string | undefined) => Promise<void>,
  ) {}

  has(id: string): boolean {
    return this.dones.has(id);
  }

  /** Queue a done; resolves once written, rejects as the one-row path would (e.g. killed meanwhile). */
  finish(id: string, why: string | undefined): Promise<void> {
    let entry = this.dones.get(id);
    if (!entry) this.dones.set(id, (entry = { why: why ?? null, ended: Date.now(), settle: [] }));
    const done = new Promise<void>((resolve, reject) => entry.settle.push({ resolve, reject }));
    this.timer ??= setTimeout(() => void this.flush(), FINISH_MS);
    return done;
  }

  /** Ask for the next step number of `id`, written with the group in flight next; a join's init wins over a plain one. */
  step(id: string, init: StepInit): Promise<StepResult> {
    let entry = this.steps.get(id);
    if (!entry) this.steps.set(id, (entry = { init, settle: [] }));
    else if (init.join || (entry.init.agent === 'unknown' && init.agent !== 'unknown')) entry.init = { ...init, join: init.join || entry.init.join };
    const result = new Promise<StepResult>((resolve, reject) => entry.settle.push({ resolve, reject }));
    // Steps of the same tick go together; while a group is in flight the next one gathers behind it.
    if (!this.running) this.soon ??= setImmediate(() => void this.flush());
    return result;
  }

  /** Write everything queued now, after the group in flight. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    if (this.soon) clearImmediate(this.soon);
    this.soon = undefined;
    if (this.dones.size === 0 && this.steps.size === 0) return;
    const run = this.write().finally(() => {
      this.running = undefined;
      if (this.steps.size > 0) this.soon ??= setImmediate(() => void this.flush());
    });
    this.running = run;
    await run;
  }

  private async write(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const dones = this.dones;
    this.dones = new Map();
    // A step of an id whose done goes now waits for the next group: one statement cannot change a row twice.
    const steps = new Map<string, QueuedStep>();
    for (const [id, s] of this.steps) if (!dones.has(id)) steps.set(id, s);
    for (const id of steps.keys()) this.steps.delete(id);
    // Sorted, so two replicas' groups lock rows in the same order.
    const doneIds = [...dones.keys()].sort();
    const stepIds = [...steps.keys()].sort();
    const inits = stepIds.map((id) => steps.get(id)!.init);
    const params = [
      stepIds,
      inits.map((i) => i.agent),
      inits.map((i) => i.user),
      inits.map((i) => i.kind),
      inits.map((i) => i.startedAt),
      inits.map((i) => i.traceparent),
      stepIds.map((id) => steps.get(id)!.settle.length),
      stepIds.filter((_, n) => inits[n]!.join),
      doneIds,
      doneIds.map((id) => dones.get(id)!.why),
      doneIds.map((id) => dones.get(id)!.ended),
    ];
    const joins = params[7] as string[];
    const shape = `${+(doneIds.length > 0)}${+(joins.length > 0)}${+(stepIds.length > joins.length)}`;
    const { statement, used } = SHAPES.get(shape)!;
    let rows: GroupRow[];
    try {
      rows = (await this.group(statement, used.map((n) => params[n - 1]))).rows;
    } catch (err) {
      for (const entry of dones.values()) for (const s of entry.settle) s.reject(err as Error);
      for (const entry of steps.values()) for (const s of entry.settle) s.reject(err as Error);
      return;
    }
    const finished = new Set<string>();
    const numbered = new Set<string>();
    for (const row of rows) {
      const { k, step_count: count, inserted, was, ...state } = row;
      if (k === 'f') {
        finished.add(row.id);
        this.written(state);
        for (const s of dones.get(row.id)!.settle) s.resolve();
        continue;
      }
      numbered.add(row.id);
      const entry = steps.get(row.id)!;
      const first = count - entry.settle.length + 1;
      const rejoined = k === 'j' && !inserted && was === 'done';
      entry.settle.forEach((s, i) => s.resolve({ step: first + i, row: state, inserted, rejoined }));
    }
    for (const [id, entry] of steps) {
      if (numbered.has(id)) continue;
      for (const s of entry.settle) s.reject(new Error(`workflow ${id} was not numbered; try again`));
    }
    await Promise.all(
      doneIds
        .filter((id) => !finished.has(id))
        .map((id) => {
          const entry = dones.get(id)!;
          return this.alone(id, entry.why ?? undefined).then(
            () => entry.settle.forEach((s) => s.resolve()),
            (err: Error) => entry.settle.forEach((s) => s.reject(err)),
          );
        }),
    );
  }

  /** Two replicas' groups can still lock a done row and a step row crosswise: a deadlock victim tries once more. */
  private async group(statement: NamedStatement, params: unknown[]): Promise<{ rows: GroupRow[] }> {
    try {
      return await this.db.queryRelaxed<GroupRow>(statement, params);
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01') throw err;
      return this.db.queryRelaxed<GroupRow>(statement, params);
    }
  }
}

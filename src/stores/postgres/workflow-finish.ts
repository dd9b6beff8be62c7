/**
 * Workflows finishing (active → done) written together: one UPDATE every FINISH_MS for every done queued meanwhile,
 * since no guard waits for a done. A row no longer active (paused or killed on another replica meanwhile) takes the
 * store's one-row path, which publishes or refuses as a lone state change does.
 */
import type { WorkflowState } from '../../gateway/types.js';
import type { Postgres } from './pool.js';

const FINISH_MS = 50;

export interface FinishedRow {
  id: string;
  state: WorkflowState;
  why: string | null;
  version: number;
}

interface Queued {
  why: string | null;
  ended: number;
  settle: Array<{ resolve: () => void; reject: (err: Error) => void }>;
}

export class FinishBatch {
  private queued = new Map<string, Queued>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Postgres,
    private readonly written: (row: FinishedRow) => void,
    private readonly alone: (id: string, why: string | undefined) => Promise<void>,
  ) {}

  has(id: string): boolean {
    return this.queued.has(id);
  }

  /** Queue a done; resolves once written, rejects as the one-row path would (e.g. killed meanwhile). */
  add(id: string, why: string | undefined): Promise<void> {
    let entry = this.queued.get(id);
    if (!entry) this.queued.set(id, (entry = { why: why ?? null, ended: Date.now(), settle: [] }));
    const done = new Promise<void>((resolve, reject) => entry.settle.push({ resolve, reject }));
    this.timer ??= setTimeout(() => void this.flush(), FINISH_MS);
    return done;
  }

  /** Write what is queued now, in id order so two replicas' batches lock rows alike. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queued.size === 0) return;
    const batch = this.queued;
    this.queued = new Map();
    const ids = [...batch.keys()].sort();
    let rows: FinishedRow[];
    try {
      ({ rows } = await this.db.query<FinishedRow>(
        `UPDATE workflows w SET state = 'done', why = d.why, ended_at = d.ended, version = w.version + 1, changed_at = NULL
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS d(id, why, ended)
         WHERE w.id = d.id AND w.state = 'active' RETURNING w.id, w.state, w.why, w.version`,
        [ids, ids.map((id) => batch.get(id)!.why), ids.map((id) => batch.get(id)!.ended)],
      ));
    } catch (err) {
      for (const entry of batch.values()) for (const s of entry.settle) s.reject(err as Error);
      return;
    }
    const done = new Set<string>();
    for (const row of rows) {
      done.add(row.id);
      this.written(row);
      for (const s of batch.get(row.id)!.settle) s.resolve();
    }
    await Promise.all(
      ids
        .filter((id) => !done.has(id))
        .map((id) => {
          const entry = batch.get(id)!;
          return this.alone(id, entry.why ?? undefined).then(
            () => entry.settle.forEach((s) => s.resolve()),
            (err: Error) => entry.settle.forEach((s) => s.reject(err)),
          );
        }),
    );
  }
}

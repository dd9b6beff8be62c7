/**
 * Counters in memory, written behind to their own SQLite file (`limits.db` in the data dir) so they survive a
 * restart: one transaction per flush (every flushMs), windows reloaded at start, cold workflows reloaded on use.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { WindowName, WindowSnapshot } from '../../limits/window.js';
import { MemoryCounterStore, type MemoryCounterOptions, type WorkflowCounts } from '../memory/counters.js';

export interface SqliteCounterOptions extends MemoryCounterOptions {
  /** Path of the database file (e.g. `<dataDir>/limits.db`). */
  file: string;
  /** Write-behind period. */
  flushMs?: number;
  /** Workflows idle longer than this are deleted from disk at start. */
  retainWorkflowMs?: number;
  /** Write-behind failures; counting carries on in memory. */
  onError?: (err: unknown) => void;
}

type Snapshots = Partial<Record<WindowName, WindowSnapshot>>;

interface WorkflowRow {
  steps: number;
  tool_calls: number;
  tokens: number;
  started_at: number;
  extra: string | null;
}

interface WindowRow {
  kind: string;
  name: string;
  data: string;
}

/** Columns of the dimensions every store counts; any other dimension goes into the row's `extra` JSON. */
const COLUMNS: Readonly<Record<string, 'steps' | 'tool_calls' | 'tokens'>> = { calls: 'steps', toolCalls: 'tool_calls', tokens: 'tokens' };
const DAY_MS = 86_400_000;

export class SqliteCounterStore extends MemoryCounterStore {
  private readonly db: Database.Database;
  private readonly getWorkflow: Database.Statement<[string], WorkflowRow>;
  private readonly writeBatch: (workflows: ReadonlyArray<readonly [string, WorkflowCounts]>, windows: ReadonlyArray<readonly ['agent' | 'team', string, string]>, now: number) => void;
  private readonly onError: (err: unknown) => void;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(opts: SqliteCounterOptions) {
    super(opts);
    this.onError = opts.onError ?? ((err) => process.emitWarning(`limits.db write failed: ${String(err)}`));
    mkdirSync(dirname(opts.file), { recursive: true });
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    // Write-behind already accepts losing the last ~200 ms on a crash; NORMAL keeps WAL commits cheap.
    this.db.pragma('synchronous = NORMAL');
    // `stdio` and `serve` may share a data dir: wait for the other process's write instead of failing.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS workflow_usage (
        id TEXT PRIMARY KEY,
        steps INTEGER NOT NULL,
        tool_calls INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS workflow_usage_updated ON workflow_usage(updated_at);
      CREATE TABLE IF NOT EXISTS window_usage (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
      );
    `);
    const columns = this.db.prepare<[], { name: string }>('PRAGMA table_info(workflow_usage)').all();
    if (!columns.some((c) => c.name === 'extra')) this.db.exec('ALTER TABLE workflow_usage ADD COLUMN extra TEXT');
    this.getWorkflow = this.db.prepare('SELECT steps, tool_calls, tokens, started_at, extra FROM workflow_usage WHERE id = ?');
    const putWorkflow = this.db.prepare<[string, number, number, number, number, string | null, number]>(
      `INSERT INTO workflow_usage (id, steps, tool_calls, tokens, started_at, extra, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET steps = excluded.steps, tool_calls = excluded.tool_calls,
         tokens = excluded.tokens, started_at = excluded.started_at, extra = excluded.extra, updated_at = excluded.updated_at`,
    );
    const putWindows = this.db.prepare<[string, string, string, number]>(
      `INSERT INTO window_usage (kind, name, data, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(kind, name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
    );
    this.writeBatch = this.db.transaction((workflows, windows, now) => {
      for (const [id, wf] of workflows) {
        const row = this.toRow(wf);
        putWorkflow.run(id, row.steps, row.tool_calls, row.tokens, wf.startedAt, row.extra, now);
      }
      for (const [kind, name, data] of windows) putWindows.run(kind, name, data, now);
    });

    const now = this.now();
    this.db.prepare('DELETE FROM workflow_usage WHERE updated_at < ?').run(now - (opts.retainWorkflowMs ?? 7 * DAY_MS));
    for (const row of this.db.prepare<[], WindowRow>('SELECT kind, name, data FROM window_usage').all()) {
      if (row.kind !== 'agent' && row.kind !== 'team') continue;
      try {
        this.restoreWindows(row.kind, row.name, JSON.parse(row.data) as Snapshots, now);
      } catch {
        // A damaged row only loses that subject's history; the windows restart empty.
      }
    }
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 200);
    // The write-behind timer must never keep the process alive on its own.
    this.timer.unref();
  }

  /** Write changed counters now (the timer does this every flushMs); one transaction, never half-applied. */
  override flush(): void {
    if (this.closed) return;
    const workflows = [...this.dirtyWorkflows];
    const windows: Array<['agent' | 'team', string, string]> = [];
    for (const [kind, map] of [['agent', this.agents], ['team', this.teams]] as const) {
      for (const [name, w] of map) {
        if (!w.dirty) continue;
        windows.push([kind, name, JSON.stringify({ perMinute: w.perMinute.snapshot(), perHour: w.perHour.snapshot(), perDay: w.perDay.snapshot(), perMonth: w.perMonth.snapshot() })]);
      }
    }
    if (workflows.length === 0 && windows.length === 0) return;
    try {
      this.writeBatch(workflows, windows, this.now());
      this.dirtyWorkflows.clear();
      for (const map of [this.agents, this.teams]) for (const w of map.values()) w.dirty = false;
    } catch (err) {
      this.onError(err);
    }
  }

  /** Flush and close the file; counting still works in memory afterwards, without persistence. */
  override close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.flush();
    this.closed = true;
    if (this.db.open) this.db.close();
  }

  protected override loadWorkflow(workflowId: string): WorkflowCounts | undefined {
    if (this.closed) return undefined;
    const row = this.getWorkflow.get(workflowId);
    if (!row) return undefined;
    const counts = new Float64Array(this.dimensions.length);
    let extra: Record<string, number> = {};
    try {
      extra = row.extra ? (JSON.parse(row.extra) as Record<string, number>) : {};
    } catch {
      // A damaged extra column loses only the dimensions kept in it.
    }
    this.dimensions.forEach((dim, m) => {
      const column = COLUMNS[dim];
      counts[m] = column ? row[column] : Number(extra[dim]) || 0;
    });
    return { startedAt: row.started_at, counts };
  }

  private toRow(wf: WorkflowCounts): { steps: number; tool_calls: number; tokens: number; extra: string | null } {
    const row = { steps: 0, tool_calls: 0, tokens: 0, extra: null as string | null };
    let extra: Record<string, number> | undefined;
    this.dimensions.forEach((dim, m) => {
      const column = COLUMNS[dim];
      if (column) row[column] = wf.counts[m]!;
      else (extra ??= {})[dim] = wf.counts[m]!;
    });
    if (extra) row.extra = JSON.stringify(extra);
    return row;
  }
}

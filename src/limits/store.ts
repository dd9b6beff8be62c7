/** Durable home of the limit counters: its own SQLite file, so counters survive a gateway restart. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { WindowName, WindowSnapshot } from './window.js';

/** Totals of one workflow, as kept in memory and on disk. */
export interface WorkflowUsage {
  steps: number;
  toolCalls: number;
  tokens: number;
  /** US dollars of model calls. */
  costUsd: number;
  /** Epoch ms of the first step seen; wall-seconds budgets count from here. */
  startedAt: number;
}

export type SubjectKind = 'agent' | 'team';

export interface StoredWindows {
  kind: SubjectKind;
  name: string;
  windows: Partial<Record<WindowName, WindowSnapshot>>;
}

interface WorkflowRow {
  steps: number;
  tool_calls: number;
  tokens: number;
  cost_usd: number | null;
  started_at: number;
}

interface WindowRow {
  kind: string;
  name: string;
  data: string;
}

export class LimitsStore {
  private readonly db: Database.Database;
  private readonly getWorkflow: Database.Statement<[string], WorkflowRow>;
  private readonly putWorkflow: Database.Statement<[string, number, number, number, number, number, number]>;
  private readonly putWindows: Database.Statement<[string, string, string, number]>;
  private readonly writeBatch: (
    workflows: ReadonlyArray<readonly [string, WorkflowUsage]>,
    windows: readonly StoredWindows[],
    now: number,
  ) => void;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
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
    // Files from before model costs were counted lack the column.
    const columns = this.db.prepare("SELECT name FROM pragma_table_info('workflow_usage')").all() as { name: string }[];
    if (!columns.some((c) => c.name === 'cost_usd')) this.db.exec('ALTER TABLE workflow_usage ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0');
    this.getWorkflow = this.db.prepare('SELECT steps, tool_calls, tokens, cost_usd, started_at FROM workflow_usage WHERE id = ?');
    this.putWorkflow = this.db.prepare(
      `INSERT INTO workflow_usage (id, steps, tool_calls, tokens, cost_usd, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET steps = excluded.steps, tool_calls = excluded.tool_calls,
         tokens = excluded.tokens, cost_usd = excluded.cost_usd, started_at = excluded.started_at, updated_at = excluded.updated_at`,
    );
    this.putWindows = this.db.prepare(
      `INSERT INTO window_usage (kind, name, data, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(kind, name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
    );
    this.writeBatch = this.db.transaction((workflows, windows, now) => {
      for (const [id, u] of workflows) this.putWorkflow.run(id, u.steps, u.toolCalls, u.tokens, u.costUsd, u.startedAt, now);
      for (const w of windows) this.putWindows.run(w.kind, w.name, JSON.stringify(w.windows), now);
    });
  }

  loadWorkflow(id: string): WorkflowUsage | undefined {
    const row = this.getWorkflow.get(id);
    if (!row) return undefined;
    return { steps: row.steps, toolCalls: row.tool_calls, tokens: row.tokens, costUsd: row.cost_usd ?? 0, startedAt: row.started_at };
  }

  loadWindows(): StoredWindows[] {
    const rows = this.db.prepare('SELECT kind, name, data FROM window_usage').all() as WindowRow[];
    const out: StoredWindows[] = [];
    for (const row of rows) {
      if (row.kind !== 'agent' && row.kind !== 'team') continue;
      try {
        out.push({ kind: row.kind, name: row.name, windows: JSON.parse(row.data) as StoredWindows['windows'] });
      } catch {
        // A damaged row only loses that subject's history; the windows restart empty.
      }
    }
    return out;
  }

  /** One transaction per flush: cheap in WAL mode and never half-applied. */
  write(workflows: ReadonlyArray<readonly [string, WorkflowUsage]>, windows: readonly StoredWindows[], now: number): void {
    if (workflows.length === 0 && windows.length === 0) return;
    this.writeBatch(workflows, windows, now);
  }

  /** Forget workflows untouched since `before` (epoch ms), so the file does not grow without bound. */
  pruneWorkflows(before: number): number {
    return this.db.prepare('DELETE FROM workflow_usage WHERE updated_at < ?').run(before).changes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Approvals in the gateway's SQLite database, so a pending call and its decision survive a restart of the console. */
import { registerMigration, type Db } from './db.js';
import type { ApprovalDecision, ApprovalListFilter, ApprovalOutcome, ApprovalRecord, ApprovalsStore, ApprovalState } from '../approvals.js';
import { listLimit } from '../approvals.js';

registerMigration(
  'approvals',
  1,
  `
  CREATE TABLE IF NOT EXISTS approvals (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    agent       TEXT    NOT NULL,
    "user"      TEXT,
    workflow_id TEXT    NOT NULL,
    server      TEXT,
    tool        TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    args_digest TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    decided_by  TEXT,
    decided_at  INTEGER,
    reason      TEXT
  );
  CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, seq);
`,
);

interface ApprovalRow {
  seq: number;
  id: string;
  agent: string;
  user: string | null;
  workflow_id: string;
  server: string | null;
  tool: string;
  args: string;
  args_digest: string;
  created_at: number;
  expires_at: number;
  state: string;
  decided_by: string | null;
  decided_at: number | null;
  reason: string | null;
}

function fromRow(r: ApprovalRow): ApprovalRecord {
  return {
    id: r.id,
    agent: r.agent,
    ...(r.user !== null ? { user: r.user } : {}),
    workflowId: r.workflow_id,
    ...(r.server !== null ? { server: r.server } : {}),
    tool: r.tool,
    args: JSON.parse(r.args) as Record<string, unknown>,
    argsDigest: r.args_digest,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    state: r.state as ApprovalState,
    ...(r.decided_by !== null ? { decidedBy: r.decided_by } : {}),
    ...(r.decided_at !== null ? { decidedAt: r.decided_at } : {}),
    ...(r.reason !== null ? { reason: r.reason } : {}),
  };
}

export class SqliteApprovals implements ApprovalsStore {
  constructor(private readonly db: Db) {}

  async create(a: ApprovalRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO approvals (id, agent, "user", workflow_id, server, tool, args, args_digest, created_at, expires_at, state, decided_by, decided_at, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(a.id, a.agent, a.user ?? null, a.workflowId, a.server ?? null, a.tool, JSON.stringify(a.args), a.argsDigest, a.createdAt, a.expiresAt, a.state, a.decidedBy ?? null, a.decidedAt ?? null, a.reason ?? null);
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const row = this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?').get(id);
    return row ? fromRow(row) : undefined;
  }

  async list(filter: ApprovalListFilter = {}): Promise<ApprovalRecord[]> {
    const clauses: string[] = [];
    const params: Array<string | number> = [];
    if (filter.state === 'decided') clauses.push(`state <> 'pending'`);
    else if (filter.state !== undefined) (clauses.push('state = ?'), params.push(filter.state));
    if (filter.before !== undefined) (clauses.push('seq < (SELECT seq FROM approvals WHERE id = ?)'), params.push(filter.before));
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.db.prepare<Array<string | number>, ApprovalRow>(`SELECT * FROM approvals ${where} ORDER BY seq DESC LIMIT ?`).all(...params, listLimit(filter.limit));
    return rows.map(fromRow);
  }

  async settle(id: string, outcome: ApprovalOutcome, d: ApprovalDecision): Promise<ApprovalRecord | undefined> {
    // One UPDATE guarded by state = 'pending': two deciders (or two replicas) cannot both win.
    const changed = this.db
      .prepare(`UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ? AND state = 'pending'`)
      .run(outcome, d.by, d.at, d.reason ?? null, id).changes;
    return changed === 1 ? this.get(id) : undefined;
  }

  close(): void {}
}

/** Approvals in the gateway's SQLite database, so a pending call and its decision survive a restart of the console. */
import { registerMigration, type Db } from './db.js';
import type { ApprovalDecision, ApprovalListFilter, ApprovalOutcome, ApprovalRecord, ApprovalsStore } from '../approvals.js';
import { listLimit } from '../approvals.js';
import { APPROVAL_COLUMNS, approvalFromRow as fromRow, approvalValues, type ApprovalRow } from '../rows.js';

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

export class SqliteApprovals implements ApprovalsStore {
  constructor(private readonly db: Db) {}

  async create(a: ApprovalRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO approvals (${APPROVAL_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...approvalValues(a));
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

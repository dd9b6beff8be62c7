/**
 * Approvals in the shared PostgreSQL store: a call held on one replica can be decided on the console of any other,
 * and the first decision wins (one UPDATE guarded by state = 'pending'). The queue that waits for the decision
 * hears of it over the bus ('approval'); that wiring is the queue's.
 */
import type { ApprovalDecision, ApprovalListFilter, ApprovalOutcome, ApprovalRecord, ApprovalsStore, ApprovalState } from '../approvals.js';
import { listLimit } from '../approvals.js';
import { registerPgMigration } from './migrations.js';
import type { Postgres, PostgresHealth } from './pool.js';

registerPgMigration(
  'approvals',
  1,
  `CREATE TABLE approvals (
     seq         BIGSERIAL PRIMARY KEY,
     id          TEXT NOT NULL UNIQUE,
     agent       TEXT NOT NULL,
     "user"      TEXT,
     workflow_id TEXT NOT NULL,
     server      TEXT,
     tool        TEXT NOT NULL,
     args        TEXT NOT NULL, -- the JSON text as sent: jsonb would refuse a NUL character and reformat numbers
     args_digest TEXT NOT NULL,
     created_at  BIGINT NOT NULL,
     expires_at  BIGINT NOT NULL,
     state       TEXT NOT NULL,
     decided_by  TEXT,
     decided_at  BIGINT,
     reason      TEXT
   );
   CREATE INDEX approvals_state ON approvals (state, seq);`,
);

interface ApprovalRow {
  id: string;
  agent: string;
  user: string | null;
  workflow_id: string;
  server: string | null;
  tool: string;
  args: string;
  args_digest: string;
  created_at: string;
  expires_at: string;
  state: string;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
}

const COLUMNS = 'id, agent, "user", workflow_id, server, tool, args, args_digest, created_at, expires_at, state, decided_by, decided_at, reason';

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
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    state: r.state as ApprovalState,
    ...(r.decided_by !== null ? { decidedBy: r.decided_by } : {}),
    ...(r.decided_at !== null ? { decidedAt: Number(r.decided_at) } : {}),
    ...(r.reason !== null ? { reason: r.reason } : {}),
  };
}

export interface PgApprovalsOptions {
  db: Postgres;
}

export class PgApprovals implements ApprovalsStore {
  private readonly db: Postgres;

  private constructor(opts: PgApprovalsOptions) {
    this.db = opts.db;
  }

  static async open(opts: PgApprovalsOptions): Promise<PgApprovals> {
    await opts.db.migrate();
    return new PgApprovals(opts);
  }

  async create(a: ApprovalRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO approvals (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [a.id, a.agent, a.user ?? null, a.workflowId, a.server ?? null, a.tool, JSON.stringify(a.args), a.argsDigest, a.createdAt, a.expiresAt, a.state, a.decidedBy ?? null, a.decidedAt ?? null, a.reason ?? null],
    );
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const { rows } = await this.db.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async list(filter: ApprovalListFilter = {}): Promise<ApprovalRecord[]> {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (filter.state === 'decided') clauses.push(`state <> 'pending'`);
    else if (filter.state !== undefined) {
      params.push(filter.state);
      clauses.push(`state = $${params.length}`);
    }
    if (filter.before !== undefined) {
      params.push(filter.before);
      clauses.push(`seq < (SELECT seq FROM approvals WHERE id = $${params.length})`);
    }
    params.push(listLimit(filter.limit));
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const { rows } = await this.db.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals ${where} ORDER BY seq DESC LIMIT $${params.length}`, params);
    return rows.map(fromRow);
  }

  async settle(id: string, outcome: ApprovalOutcome, d: ApprovalDecision): Promise<ApprovalRecord | undefined> {
    // One UPDATE guarded by state = 'pending': two deciders (or two replicas) cannot both win.
    const { rows } = await this.db.query<ApprovalRow>(
      `UPDATE approvals SET state = $2, decided_by = $3, decided_at = $4, reason = $5 WHERE id = $1 AND state = 'pending' RETURNING ${COLUMNS}`,
      [id, outcome, d.by, d.at, d.reason ?? null],
    );
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  /** The shared store's reachability, for /readyz. */
  health(): PostgresHealth {
    return this.db.health();
  }

  /** The pool belongs to whoever opened it; nothing of this store's own to release. */
  close(): void {}
}

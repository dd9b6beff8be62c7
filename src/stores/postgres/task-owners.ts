/** A2A task owners in the shared PostgreSQL store: the first claim wins across every replica (ON CONFLICT DO NOTHING). */
import type { OwnedKind, TaskOwner, TaskOwnerStore } from '../task-owners.js';
import type { Clock } from '../types.js';
import { registerPgMigration } from './migrations.js';
import type { Postgres, PostgresHealth } from './pool.js';

registerPgMigration(
  'a2a',
  1,
  `CREATE TABLE a2a_owners (
     server      TEXT NOT NULL,
     kind        TEXT NOT NULL,
     id          TEXT NOT NULL,
     agent       TEXT NOT NULL,
     workflow_id TEXT NOT NULL,
     step        INTEGER NOT NULL,
     created_at  BIGINT NOT NULL,
     PRIMARY KEY (server, kind, id)
   );
   CREATE INDEX a2a_owners_created ON a2a_owners (created_at);`,
);

export interface PgTaskOwnersOptions {
  db: Postgres;
  now?: Clock;
}

export class PgTaskOwners implements TaskOwnerStore {
  private readonly db: Postgres;
  private readonly now: Clock;

  private constructor(opts: PgTaskOwnersOptions) {
    this.db = opts.db;
    this.now = opts.now ?? Date.now;
  }

  static async open(opts: PgTaskOwnersOptions): Promise<PgTaskOwners> {
    await opts.db.migrate();
    return new PgTaskOwners(opts);
  }

  async claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): Promise<void> {
    await this.db.query(
      'INSERT INTO a2a_owners (server, kind, id, agent, workflow_id, step, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING',
      [server, kind, id, owner.agentId, owner.workflowId, owner.stepNo, this.now()],
    );
  }

  async ownerOf(server: string, kind: OwnedKind, id: string): Promise<TaskOwner | undefined> {
    const { rows } = await this.db.query<{ agent: string; workflow_id: string; step: number }>(
      'SELECT agent, workflow_id, step FROM a2a_owners WHERE server = $1 AND kind = $2 AND id = $3',
      [server, kind, id],
    );
    const r = rows[0];
    return r ? { agentId: r.agent, workflowId: r.workflow_id, stepNo: r.step } : undefined;
  }

  /** The shared store's reachability, for /readyz. */
  health(): PostgresHealth {
    return this.db.health();
  }

  /** The pool belongs to whoever opened it; nothing of this store's own to release. */
  close(): void {}
}

/** A2A task owners in the gateway database (table a2a_owners, migration room 'a2a'), so a restart forgets none. */
import type { OwnedKind, TaskOwner, TaskOwnerStore } from '../task-owners.js';
import type { Clock } from '../types.js';
import { registerMigration, type Db } from './db.js';

registerMigration(
  'a2a',
  1,
  `CREATE TABLE IF NOT EXISTS a2a_owners (
     server      TEXT    NOT NULL,
     kind        TEXT    NOT NULL,
     id          TEXT    NOT NULL,
     agent       TEXT    NOT NULL,
     workflow_id TEXT    NOT NULL,
     step        INTEGER NOT NULL,
     created_at  INTEGER NOT NULL,
     PRIMARY KEY (server, kind, id)
   );
   CREATE INDEX IF NOT EXISTS a2a_owners_created ON a2a_owners (created_at);`,
);

interface OwnerRow {
  agent: string;
  workflow_id: string;
  step: number;
}

export class SqliteTaskOwners implements TaskOwnerStore {
  private readonly insert;
  private readonly select;
  private readonly now: Clock;

  constructor(db: Db, opts: { now?: Clock } = {}) {
    this.now = opts.now ?? Date.now;
    this.insert = db.prepare('INSERT OR IGNORE INTO a2a_owners (server, kind, id, agent, workflow_id, step, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.select = db.prepare<[string, string, string], OwnerRow>('SELECT agent, workflow_id, step FROM a2a_owners WHERE server = ? AND kind = ? AND id = ?');
  }

  claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): void {
    this.insert.run(server, kind, id, owner.agentId, owner.workflowId, owner.stepNo, this.now());
  }

  ownerOf(server: string, kind: OwnedKind, id: string): TaskOwner | undefined {
    const row = this.select.get(server, kind, id);
    return row ? { agentId: row.agent, workflowId: row.workflow_id, stepNo: row.step } : undefined;
  }
}

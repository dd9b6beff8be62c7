/** The audit room's own schema, applied by db.ts in version order and recorded in schema_migrations. */
import type { Migration } from '../migration-registry.js';

export type { Migration };

export const auditMigrations: readonly Migration[] = [
  {
    room: 'audit',
    version: 1,
    sql: `
      CREATE TABLE IF NOT EXISTS audit (
        id          INTEGER PRIMARY KEY,
        time        INTEGER NOT NULL,
        workflow_id TEXT    NOT NULL,
        step        INTEGER NOT NULL,
        parent_step INTEGER,
        agent       TEXT    NOT NULL,
        "user"      TEXT,
        chain       TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        server      TEXT,
        tool        TEXT    NOT NULL,
        args        TEXT,
        outcome     TEXT    NOT NULL,
        reason      TEXT,
        duration_ms REAL    NOT NULL,
        bytes       INTEGER,
        tokens      INTEGER,
        traceparent TEXT,
        prev_hash   TEXT    NOT NULL,
        hash        TEXT    NOT NULL
      );
      CREATE INDEX IF NOT EXISTS audit_workflow_step ON audit (workflow_id, step);
      CREATE INDEX IF NOT EXISTS audit_agent_id ON audit (agent, id);
      CREATE INDEX IF NOT EXISTS audit_time ON audit (time);

      -- The hash of the last pruned record, so verify can start mid-chain after retention deletes a prefix.
      CREATE TABLE IF NOT EXISTS audit_anchor (
        seq       INTEGER PRIMARY KEY,
        last_id   INTEGER NOT NULL,
        last_hash TEXT    NOT NULL,
        pruned_at INTEGER NOT NULL,
        deleted   INTEGER NOT NULL
      );

      CREATE TABLE IF NOT EXISTS workflows (
        seq         INTEGER PRIMARY KEY,
        id          TEXT    NOT NULL UNIQUE,
        agent       TEXT    NOT NULL,
        "user"      TEXT,
        state       TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        step_count  INTEGER NOT NULL DEFAULT 0,
        traceparent TEXT,
        why         TEXT
      );
      CREATE INDEX IF NOT EXISTS workflows_agent ON workflows (agent, seq);
      CREATE INDEX IF NOT EXISTS workflows_state ON workflows (state, seq);

      -- List calls and pings: counted per day, agent and method instead of stored one by one.
      CREATE TABLE IF NOT EXISTS call_counts (
        day    TEXT    NOT NULL,
        agent  TEXT    NOT NULL,
        method TEXT    NOT NULL,
        count  INTEGER NOT NULL,
        PRIMARY KEY (day, agent, method)
      );
    `,
  },
  {
    room: 'audit',
    version: 2,
    sql: `
      -- Where the chain ends and how many records it holds, MACed with the audit key: catches deleted newest records.
      CREATE TABLE IF NOT EXISTS audit_head (
        one        INTEGER PRIMARY KEY CHECK (one = 1),
        last_id    INTEGER NOT NULL,
        last_hash  TEXT    NOT NULL,
        records    INTEGER NOT NULL,
        keyed_from INTEGER,
        mac        TEXT,
        updated_at INTEGER NOT NULL
      );
    `,
  },
];

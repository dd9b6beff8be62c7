// The workflows table in PostgreSQL and the server clock its catch-up reads compare on.
import { registerPgMigration } from './migrations.js';

/** The server's clock in epoch ms: every replica compares catch-up times on one clock. */
export const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

registerPgMigration(
  'workflows',
  1,
  `CREATE TABLE workflows (
     id          TEXT PRIMARY KEY,
     seq         BIGSERIAL NOT NULL UNIQUE,
     agent       TEXT NOT NULL,
     "user"      TEXT,
     state       TEXT NOT NULL CHECK (state IN ('active', 'paused', 'tripped', 'killed', 'done')),
     kind        TEXT NOT NULL,
     started_at  BIGINT NOT NULL,
     ended_at    BIGINT,
     step_count  INTEGER NOT NULL DEFAULT 0,
     traceparent TEXT,
     why         TEXT,
     version     INTEGER NOT NULL DEFAULT 1,
     changed_at  BIGINT
   );
   CREATE INDEX workflows_changed_at ON workflows (changed_at) WHERE changed_at IS NOT NULL;
   CREATE INDEX workflows_stopped ON workflows (state) WHERE state IN ('paused', 'tripped', 'killed');
   CREATE INDEX workflows_trace_id ON workflows (substr(traceparent, 4, 32)) WHERE traceparent IS NOT NULL;
   CREATE INDEX workflows_agent_seq ON workflows (agent, seq);`,
);

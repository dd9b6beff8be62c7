/**
 * The audit trail's tables on PostgreSQL: the same columns as SQLite (the hash covers them as stored), one global
 * chain whose head row every append updates under the chain lock (docs/decisions/0032-one-audit-chain-on-postgres.md).
 */
import { registerPgMigration } from '../migrations.js';

/** The advisory lock every replica's append and prune takes (pg_advisory_xact_lock(hashtext(name))). */
export const CHAIN_LOCK = 'switchyard:audit-chain';

registerPgMigration(
  'audit',
  1,
  `
  CREATE TABLE IF NOT EXISTS audit (
    id BIGINT PRIMARY KEY,
    time BIGINT NOT NULL,
    workflow_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    parent_step INTEGER,
    agent TEXT NOT NULL,
    "user" TEXT,
    chain TEXT NOT NULL,
    kind TEXT NOT NULL,
    server TEXT,
    tool TEXT NOT NULL,
    args TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    duration_ms DOUBLE PRECISION NOT NULL,
    bytes BIGINT,
    tokens BIGINT,
    traceparent TEXT,
    model TEXT,
    team TEXT,
    cost_usd DOUBLE PRECISION,
    model_info TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    -- Which replica wrote the row (not hashed: the chain is global; it only says where to look when one misbehaves).
    replica TEXT,
    -- The argument words as audit/query.ts splits them (runs of letters and digits, case folded), for phrase search;
    -- split by the writer, because the server's [[:alnum:]] and lower() know no accents under a C locale.
    search TSVECTOR
  );
  CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
  CREATE INDEX IF NOT EXISTS audit_agent_id ON audit (agent, id);
  CREATE INDEX IF NOT EXISTS audit_workflow_step ON audit (workflow_id, step, id);
  CREATE INDEX IF NOT EXISTS audit_server_id ON audit (server, id);
  CREATE INDEX IF NOT EXISTS audit_tool_id ON audit (tool, id);
  CREATE INDEX IF NOT EXISTS audit_user_id ON audit ("user", id);
  CREATE INDEX IF NOT EXISTS audit_reason_id ON audit (reason, id);
  CREATE INDEX IF NOT EXISTS audit_outcome_id ON audit (outcome, id);
  CREATE INDEX IF NOT EXISTS audit_search ON audit USING GIN (search);
  CREATE INDEX IF NOT EXISTS audit_model_time ON audit (time) INCLUDE (model, agent, team) WHERE model IS NOT NULL;

  CREATE TABLE IF NOT EXISTS audit_head (
    one SMALLINT PRIMARY KEY CHECK (one = 1),
    last_id BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    records BIGINT NOT NULL,
    keyed_from BIGINT,
    mac TEXT,
    updated_at BIGINT NOT NULL
  );

  CREATE TABLE IF NOT EXISTS audit_anchor (
    last_id BIGINT PRIMARY KEY,
    last_hash TEXT NOT NULL,
    pruned_at BIGINT NOT NULL,
    deleted BIGINT NOT NULL
  );

  CREATE TABLE IF NOT EXISTS call_counts (
    day TEXT NOT NULL,
    agent TEXT NOT NULL,
    method TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (day, agent, method)
  );
`,
);

// The spend report's figures as columns computed once per model call (not hashed: the chain covers model_info), and
// one partial index holding everything the report sums, so a day of model calls is read from the index alone.
registerPgMigration(
  'audit',
  2,
  `
  ALTER TABLE audit
    ADD COLUMN tokens_in DOUBLE PRECISION GENERATED ALWAYS AS ((model_info::jsonb #>> '{tokens,input}')::float8) STORED,
    ADD COLUMN tokens_out DOUBLE PRECISION GENERATED ALWAYS AS ((model_info::jsonb #>> '{tokens,output}')::float8) STORED,
    ADD COLUMN tokens_cached DOUBLE PRECISION GENERATED ALWAYS AS ((model_info::jsonb #>> '{tokens,cachedInput}')::float8) STORED,
    ADD COLUMN tokens_estimated BOOLEAN GENERATED ALWAYS AS (coalesce((model_info::jsonb ->> 'tokensEstimated') = 'true', false)) STORED;
  DROP INDEX IF EXISTS audit_model_time;
  CREATE INDEX IF NOT EXISTS audit_model_spend ON audit (time)
    INCLUDE (model, agent, team, tokens, cost_usd, tokens_in, tokens_out, tokens_cached, tokens_estimated) WHERE model IS NOT NULL;
`,
);

/** Audit columns of model calls (src/audit/model-columns.ts fills them) and the indexes the model route reads. */
import { registerMigration } from './db.js';

registerMigration(
  'audit-model',
  1,
  `
  ALTER TABLE audit ADD COLUMN model TEXT;
  ALTER TABLE audit ADD COLUMN team TEXT;
  ALTER TABLE audit ADD COLUMN cost_usd REAL;
  ALTER TABLE audit ADD COLUMN model_info TEXT;
  CREATE INDEX IF NOT EXISTS audit_model_time ON audit (time, model) WHERE model IS NOT NULL;
  -- Model calls join the workflow whose traceparent carries their trace id.
  CREATE INDEX IF NOT EXISTS workflows_trace_id ON workflows (substr(traceparent, 4, 32)) WHERE traceparent IS NOT NULL;
`,
);

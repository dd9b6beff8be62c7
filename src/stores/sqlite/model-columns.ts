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

// The spend report's sums, covered by one partial index: a month of model calls is read from the index alone, with no
// table lookup and no JSON parsing per row (the expressions must stay as stores/sqlite/spend.ts writes them).
registerMigration(
  'audit-model',
  2,
  `
  CREATE INDEX IF NOT EXISTS audit_model_spend ON audit (
    time, model, agent, team, tokens, cost_usd,
    json_extract(model_info, '$.tokens.input'), json_extract(model_info, '$.tokens.output'),
    json_extract(model_info, '$.tokens.cachedInput'), json_extract(model_info, '$.tokensEstimated')
  ) WHERE model IS NOT NULL;
`,
);

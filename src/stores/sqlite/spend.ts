/**
 * Model spend aggregated from the audit trail: calls, tokens and cost per model, agent or team over a time range.
 *
 * `GET /admin/api/spend?by=model|agent|team&from=&to=` answers
 * `{by, from, to, groups: [{key, calls, tokens: {input, output, cachedInput, total}, costUsd, estimatedCalls}], total: {…same without key}}`,
 * groups by cost, highest first; `from`/`to` are ISO times (default: the last 24 hours), `key` is null for agents
 * without a team.
 */
import type { Db } from './db.js';
import { InvalidQueryError } from '../../audit/query.js';

export type SpendDimension = 'model' | 'agent' | 'team';
export const SPEND_DIMENSIONS: readonly SpendDimension[] = ['model', 'agent', 'team'];

export interface SpendFigures {
  calls: number;
  tokens: { input: number; output: number; cachedInput: number; total: number };
  costUsd: number;
  /** Calls whose tokens the gateway estimated (the provider reported no usage). */
  estimatedCalls: number;
}

export interface SpendReport {
  by: SpendDimension;
  from: string;
  to: string;
  groups: Array<{ key: string | null } & SpendFigures>;
  total: SpendFigures;
}

interface SpendRow {
  key: string | null;
  calls: number;
  input: number | null;
  output: number | null;
  cached: number | null;
  total: number | null;
  cost: number | null;
  estimated: number | null;
}

const COLUMN: Record<SpendDimension, string> = { model: 'model', agent: 'agent', team: 'team' };
const DAY_MS = 86_400_000;

function figures(r: Omit<SpendRow, 'key'>): SpendFigures {
  return {
    calls: r.calls,
    tokens: { input: r.input ?? 0, output: r.output ?? 0, cachedInput: r.cached ?? 0, total: r.total ?? 0 },
    costUsd: r.cost ?? 0,
    estimatedCalls: r.estimated ?? 0,
  };
}

export function querySpend(db: Db, by: SpendDimension, range: { from?: number; to?: number }, now = Date.now()): SpendReport {
  const to = range.to ?? now;
  const from = range.from ?? to - DAY_MS;
  if (from > to) throw new InvalidQueryError('from must not be after to');
  const rows = db
    .prepare<[number, number], SpendRow>(
      `SELECT ${COLUMN[by]} AS key, count(*) AS calls,
         sum(json_extract(model_info, '$.tokens.input')) AS input,
         sum(json_extract(model_info, '$.tokens.output')) AS output,
         sum(json_extract(model_info, '$.tokens.cachedInput')) AS cached,
         sum(tokens) AS total, sum(cost_usd) AS cost,
         sum(CASE WHEN json_extract(model_info, '$.tokensEstimated') THEN 1 ELSE 0 END) AS estimated
       FROM audit WHERE model IS NOT NULL AND time >= ? AND time < ?
       GROUP BY key ORDER BY cost DESC, calls DESC`,
    )
    .all(from, to);
  const groups = rows.map((r) => ({ key: r.key, ...figures(r) }));
  const total = groups.reduce<SpendFigures>(
    (t, g) => ({
      calls: t.calls + g.calls,
      tokens: { input: t.tokens.input + g.tokens.input, output: t.tokens.output + g.tokens.output, cachedInput: t.tokens.cachedInput + g.tokens.cachedInput, total: t.tokens.total + g.tokens.total },
      costUsd: t.costUsd + g.costUsd,
      estimatedCalls: t.estimatedCalls + g.estimatedCalls,
    }),
    figures({ calls: 0, input: 0, output: 0, cached: 0, total: 0, cost: 0, estimated: 0 }),
  );
  return { by, from: new Date(from).toISOString(), to: new Date(to).toISOString(), groups, total };
}

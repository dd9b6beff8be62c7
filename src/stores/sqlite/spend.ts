/**
 * Model spend aggregated from the audit trail: calls, tokens and cost per model, agent or team over a time range.
 *
 * `GET /admin/api/spend?by=model|agent|team&from=&to=` answers
 * `{by, from, to, groups: [{key, calls, tokens: {input, output, cachedInput, total}, costUsd, estimatedCalls}], total: {…same without key}}`,
 * groups by cost, highest first; `from`/`to` are ISO times (default: the last 24 hours), `key` is null for agents
 * without a team. With `bucket=hour|day` the report also holds `series`: the same figures per UTC hour or day and key,
 * for the console's chart; the range then spans at most MAX_BUCKETS buckets so the answer stays bounded.
 */
import type { Db } from './db.js';
import { InvalidQueryError } from '../../audit/query.js';
import './model-columns.js';

export type SpendDimension = 'model' | 'agent' | 'team';
export const SPEND_DIMENSIONS: readonly SpendDimension[] = ['model', 'agent', 'team'];

export type SpendBucket = 'hour' | 'day';
export const SPEND_BUCKETS: readonly SpendBucket[] = ['hour', 'day'];
const BUCKET_MS: Record<SpendBucket, number> = { hour: 3_600_000, day: 86_400_000 };
/** At most this many buckets per report: 31 days of hours, or a year and a bit of days. */
export const MAX_BUCKETS = 800;

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
  /** Only with a bucket: figures per bucket start (ISO time, UTC) and key, in time order; empty buckets left out. */
  bucket?: SpendBucket;
  series?: Array<{ start: string; key: string | null } & SpendFigures>;
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

const SUMS = `count(*) AS calls,
  sum(json_extract(model_info, '$.tokens.input')) AS input,
  sum(json_extract(model_info, '$.tokens.output')) AS output,
  sum(json_extract(model_info, '$.tokens.cachedInput')) AS cached,
  sum(tokens) AS total, sum(cost_usd) AS cost,
  sum(CASE WHEN json_extract(model_info, '$.tokensEstimated') THEN 1 ELSE 0 END) AS estimated`;

/** The groups query, parameters (from, to). */
export function spendSql(by: SpendDimension): string {
  return `SELECT ${COLUMN[by]} AS key, ${SUMS}
    FROM audit WHERE model IS NOT NULL AND time >= ? AND time < ?
    GROUP BY key ORDER BY cost DESC, calls DESC`;
}

/** The series query, parameters (bucket ms, from, to). */
export function seriesSql(by: SpendDimension): string {
  // `%` works on integers; `/` would divide by the bound number as a real and make every time its own bucket.
  return `SELECT time - time % ? AS start, ${COLUMN[by]} AS key, ${SUMS}
    FROM audit WHERE model IS NOT NULL AND time >= ? AND time < ?
    GROUP BY start, key ORDER BY start, cost DESC`;
}

// Both queries read only the covering partial index audit_model_spend (stores/sqlite/model-columns.ts).
function querySeries(db: Db, by: SpendDimension, bucket: SpendBucket, from: number, to: number): SpendReport['series'] {
  const size = BUCKET_MS[bucket];
  const count = Math.ceil((to - from) / size);
  if (count > MAX_BUCKETS) throw new InvalidQueryError(`the range spans ${count} ${bucket}s; at most ${MAX_BUCKETS} buckets per query: narrow from/to or use a larger bucket`);
  const rows = db.prepare<[number, number, number], SpendRow & { start: number }>(seriesSql(by)).all(size, from, to);
  return rows.map((r) => ({ start: new Date(r.start).toISOString(), key: r.key, ...figures(r) }));
}

export function querySpend(db: Db, by: SpendDimension, range: { from?: number; to?: number; bucket?: SpendBucket }, now = Date.now()): SpendReport {
  const to = range.to ?? now;
  const from = range.from ?? to - DAY_MS;
  if (from > to) throw new InvalidQueryError('from must not be after to');
  const rows = db.prepare<[number, number], SpendRow>(spendSql(by)).all(from, to);
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
  const report: SpendReport = { by, from: new Date(from).toISOString(), to: new Date(to).toISOString(), groups, total };
  if (range.bucket) Object.assign(report, { bucket: range.bucket, series: querySeries(db, by, range.bucket, from, to) });
  return report;
}

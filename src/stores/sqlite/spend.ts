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
import { BUCKET_MS, checkBuckets, SPEND_COLUMN as COLUMN, spendRange, spendReport, type SpendBucket, type SpendDimension, type SpendReport, type SpendRow } from '../spend.js';
import './model-columns.js';

export { MAX_BUCKETS, SPEND_BUCKETS, SPEND_DIMENSIONS, type SpendBucket, type SpendDimension, type SpendFigures, type SpendReport } from '../spend.js';

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
export function querySpend(db: Db, by: SpendDimension, range: { from?: number; to?: number; bucket?: SpendBucket }, now = Date.now()): SpendReport {
  const { from, to } = spendRange(range, now);
  if (range.bucket) checkBuckets(range.bucket, from, to);
  const rows = db.prepare<[number, number], SpendRow>(spendSql(by)).all(from, to);
  if (!range.bucket) return spendReport(by, from, to, rows);
  const series = db.prepare<[number, number, number], SpendRow & { start: number }>(seriesSql(by)).all(BUCKET_MS[range.bucket], from, to);
  return spendReport(by, from, to, rows, { bucket: range.bucket, rows: series });
}

/** Model spend on PostgreSQL, summed from the shared trail: the same SpendReport as the SQLite store answers. */
import {
  BUCKET_MS, checkBuckets, SPEND_COLUMN, spendRange, spendReport, type SpendBucket, type SpendDimension, type SpendReport, type SpendRow,
} from '../../spend.js';
import type { PgQueryable } from './rows.js';

// The token figures are generated columns of model_info (audit migration 2), all in the partial index audit_model_spend.
const SUMS = `count(*)::int AS calls,
  sum(tokens_in) AS input, sum(tokens_out) AS output, sum(tokens_cached) AS cached,
  sum(tokens)::float8 AS total, sum(cost_usd) AS cost,
  (count(*) FILTER (WHERE tokens_estimated))::int AS estimated`;

/** The groups query, parameters ($1 from, $2 to). */
export function pgSpendSql(by: SpendDimension): string {
  return `SELECT ${SPEND_COLUMN[by]} AS key, ${SUMS}
    FROM audit WHERE model IS NOT NULL AND time >= $1 AND time < $2
    GROUP BY key ORDER BY cost DESC NULLS LAST, calls DESC`;
}

/** The series query, parameters ($1 bucket ms, $2 from, $3 to). */
export function pgSeriesSql(by: SpendDimension): string {
  return `SELECT (time - time % $1::bigint)::float8 AS start, ${SPEND_COLUMN[by]} AS key, ${SUMS}
    FROM audit WHERE model IS NOT NULL AND time >= $2 AND time < $3
    GROUP BY 1, key ORDER BY 1, cost DESC NULLS LAST`;
}

export async function queryPgSpend(
  q: PgQueryable,
  by: SpendDimension,
  range: { from?: number; to?: number; bucket?: SpendBucket },
  now = Date.now(),
): Promise<SpendReport> {
  const { from, to } = spendRange(range, now);
  if (range.bucket) checkBuckets(range.bucket, from, to);
  const rows = (await q.query<SpendRow>(pgSpendSql(by), [from, to])).rows;
  if (!range.bucket) return spendReport(by, from, to, rows);
  const series = (await q.query<SpendRow & { start: number }>(pgSeriesSql(by), [BUCKET_MS[range.bucket], from, to])).rows;
  return spendReport(by, from, to, rows, { bucket: range.bucket, rows: series });
}

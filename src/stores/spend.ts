/**
 * The spend report's shape and rules, whichever store aggregates it (SQLite: stores/sqlite/spend.ts, PostgreSQL:
 * stores/postgres/audit/spend.ts). See stores/sqlite/spend.ts for the endpoint it answers.
 */
import { InvalidQueryError } from '../audit/query.js';

export type SpendDimension = 'model' | 'agent' | 'team';
export const SPEND_DIMENSIONS: readonly SpendDimension[] = ['model', 'agent', 'team'];

export type SpendBucket = 'hour' | 'day';
export const SPEND_BUCKETS: readonly SpendBucket[] = ['hour', 'day'];
export const BUCKET_MS: Record<SpendBucket, number> = { hour: 3_600_000, day: 86_400_000 };
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

/** One aggregated row as both stores' SQL answers it. */
export interface SpendRow {
  key: string | null;
  calls: number;
  input: number | null;
  output: number | null;
  cached: number | null;
  total: number | null;
  cost: number | null;
  estimated: number | null;
}

export const SPEND_COLUMN: Record<SpendDimension, string> = { model: 'model', agent: 'agent', team: 'team' };
const DAY_MS = 86_400_000;

export function figures(r: Omit<SpendRow, 'key'>): SpendFigures {
  return {
    calls: r.calls,
    tokens: { input: r.input ?? 0, output: r.output ?? 0, cachedInput: r.cached ?? 0, total: r.total ?? 0 },
    costUsd: r.cost ?? 0,
    estimatedCalls: r.estimated ?? 0,
  };
}

/** The range a report covers (default: the last 24 hours); throws InvalidQueryError when from is after to. */
export function spendRange(range: { from?: number; to?: number }, now: number): { from: number; to: number } {
  const to = range.to ?? now;
  const from = range.from ?? to - DAY_MS;
  if (from > to) throw new InvalidQueryError('from must not be after to');
  return { from, to };
}

/** Throws InvalidQueryError when the range holds more than MAX_BUCKETS buckets. */
export function checkBuckets(bucket: SpendBucket, from: number, to: number): void {
  const count = Math.ceil((to - from) / BUCKET_MS[bucket]);
  if (count > MAX_BUCKETS) throw new InvalidQueryError(`the range spans ${count} ${bucket}s; at most ${MAX_BUCKETS} buckets per query: narrow from/to or use a larger bucket`);
}

/** The report from its groups (and series), totals summed here. */
export function spendReport(
  by: SpendDimension,
  from: number,
  to: number,
  rows: SpendRow[],
  series?: { bucket: SpendBucket; rows: Array<SpendRow & { start: number }> },
): SpendReport {
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
  if (series) {
    Object.assign(report, {
      bucket: series.bucket,
      series: series.rows.map((r) => ({ start: new Date(r.start).toISOString(), key: r.key, ...figures(r) })),
    });
  }
  return report;
}

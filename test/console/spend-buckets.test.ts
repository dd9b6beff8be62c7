/** The spend report's `bucket=hour|day` series: figures per UTC bucket and key, bounded, and read from the time index. */
import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import { InvalidQueryError } from '../../src/audit/query.js';
import { MAX_BUCKETS, querySpend, seriesSql, spendSql } from '../../src/stores/sqlite/spend.js';
import { caller, ok, removeTempDirs, step, tempDataDir } from '../audit/helpers.js';

const opened: Array<{ db: Db; store: AuditStore }> = [];
const DAY = Date.UTC(2026, 10, 30);
const HOUR = 3_600_000;

/** A store holding model calls at the given times: [offset from DAY in ms, model, agent, tokens, cost]. */
function seeded(calls: Array<[number, string, string, number, number]>): Db {
  const db = openDatabase({ dataDir: tempDataDir() });
  const store = new AuditStore(db, { flushMs: 60_000 });
  opened.push({ db, store });
  calls.forEach(([, , agent], i) => store.record(step({ workflowId: 'w1', stepNo: i + 1, caller: caller(agent), target: `m${i}` }), ok(1)));
  store.record(step({ workflowId: 'w1', stepNo: calls.length + 1, caller: caller('root'), target: 'not-a-model' }), ok(1));
  store.flush();
  const set = db.prepare('UPDATE audit SET time = ?, model = ?, tokens = ?, cost_usd = ?, model_info = ? WHERE step = ?');
  calls.forEach(([at, model, , tokens, cost], i) => set.run(DAY + at, model, tokens, cost, JSON.stringify({ tokens: { input: tokens - 1, output: 1, cachedInput: 0 } }), i + 1));
  db.prepare('UPDATE audit SET time = ? WHERE step = ?').run(DAY + HOUR, calls.length + 1);
  return db;
}

afterEach(() => {
  for (const { db, store } of opened.splice(0)) {
    store.close();
    closeDatabase(db);
  }
  removeTempDirs();
});

describe('spend series', () => {
  const calls: Array<[number, string, string, number, number]> = [
    [10 * 60_000, 'gpt-a', 'alice', 10, 0.01],
    [50 * 60_000, 'gpt-a', 'bob', 20, 0.02],
    [50 * 60_000, 'gpt-b', 'alice', 5, 0.5],
    [2 * HOUR + 1, 'gpt-a', 'alice', 30, 0.03],
    [26 * HOUR, 'gpt-b', 'bob', 40, 0.4],
  ];

  it('sums each model per hour, in time order, leaving empty hours out', () => {
    const r = querySpend(seeded(calls), 'model', { from: DAY, to: DAY + 3 * HOUR, bucket: 'hour' });
    expect(r.bucket).toBe('hour');
    expect(r.series!.map((s) => [s.start, s.key, s.calls, s.tokens.total, s.costUsd])).toEqual([
      [new Date(DAY).toISOString(), 'gpt-b', 1, 5, 0.5],
      [new Date(DAY).toISOString(), 'gpt-a', 2, 30, expect.closeTo(0.03, 12)],
      [new Date(DAY + 2 * HOUR).toISOString(), 'gpt-a', 1, 30, 0.03],
    ]);
    expect(r.series![0]!.tokens).toEqual({ input: 4, output: 1, cachedInput: 0, total: 5 });
    expect(r.total.calls).toBe(4);
  });

  it('sums per agent and UTC day, and the series adds up to the groups', () => {
    const r = querySpend(seeded(calls), 'agent', { from: DAY, to: DAY + 2 * 86_400_000, bucket: 'day' });
    expect(r.series!.map((s) => [s.start.slice(0, 10), s.key, s.calls])).toEqual([
      ['2026-11-30', 'alice', 3],
      ['2026-11-30', 'bob', 1],
      ['2026-12-01', 'bob', 1],
    ]);
    for (const g of r.groups) expect(r.series!.filter((s) => s.key === g.key).reduce((n, s) => n + s.tokens.total, 0)).toBe(g.tokens.total);
  });

  it('answers no series without a bucket', () => {
    const r = querySpend(seeded(calls), 'model', { from: DAY, to: DAY + 86_400_000 });
    expect(r.series).toBeUndefined();
    expect(r.bucket).toBeUndefined();
  });

  it('refuses a range of more than MAX_BUCKETS buckets, saying what to do', () => {
    const db = seeded(calls);
    expect(() => querySpend(db, 'model', { from: DAY - (MAX_BUCKETS + 1) * HOUR, to: DAY, bucket: 'hour' })).toThrow(InvalidQueryError);
    expect(() => querySpend(db, 'model', { from: DAY - (MAX_BUCKETS + 1) * HOUR, to: DAY, bucket: 'hour' })).toThrow(/at most 800 buckets per query: narrow from\/to or use a larger bucket/);
    expect(querySpend(db, 'model', { from: DAY - MAX_BUCKETS * HOUR, to: DAY, bucket: 'hour' }).series).toEqual([]);
  });

  it('reads only the covering spend index, not the trail', () => {
    const db = seeded(calls);
    const plan = db
      .prepare<[number, number, number], { detail: string }>(`EXPLAIN QUERY PLAN ${seriesSql('team')}`)
      .all(HOUR, DAY, DAY + HOUR)
      .map((r) => r.detail)
      .join('\n');
    const groupsPlan = db
      .prepare<[number, number], { detail: string }>(`EXPLAIN QUERY PLAN ${spendSql('agent')}`)
      .all(DAY, DAY + HOUR)
      .map((r) => r.detail)
      .join('\n');
    expect(groupsPlan).toMatch(/USING COVERING INDEX audit_model_spend/);
    expect(plan).toMatch(/USING COVERING INDEX audit_model_spend/);
  });
});

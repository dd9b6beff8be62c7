// A batched audit flush whose COMMIT landed but whose answer was lost (the connection dropped right after) is retried:
// the retry must not append the same steps a second time, and the chain must still verify.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PgAuditLog } from '../../../src/stores/postgres/audit/store.js';
import type { Postgres } from '../../../src/stores/postgres/pool.js';
import { ok, step } from '../../audit/helpers.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './databases.js';

if (pgUnavailable) console.log(`skipping the PostgreSQL audit retry test: ${pgUnavailable}`);

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

/** The real store, except that the next `lose` appends commit and then fail as a dropped connection would. */
function losingAnswers(pg: Postgres): { db: Postgres; lose(): void; lost: () => number } {
  let pendingLoss = false;
  let lost = 0;
  const db: Postgres = {
    ...pg,
    withLockReading: async (name, read, fn) => {
      const v = await pg.withLockReading(name, read, fn);
      if (pendingLoss) {
        pendingLoss = false;
        lost++;
        throw new Error('Connection terminated unexpectedly');
      }
      return v;
    },
  };
  return { db, lose: () => (pendingLoss = true), lost: () => lost };
}

describe.skipIf(pgUnavailable)('PgAuditLog retry after a lost COMMIT answer', () => {
  it('writes each step once, keeps the chain whole, and still writes the steps queued meanwhile', async () => {
    const pg = await pgFor(storeDir());
    const { db, lose, lost } = losingAnswers(pg);
    const log = await PgAuditLog.open(db, { hmacKey: randomBytes(32), flushMs: 60_000, replica: 'a' });
    for (let i = 1; i <= 3; i++) log.record(step({ workflowId: 'wf-1', stepNo: i }), ok());
    lose();
    await log.flush();
    expect(lost()).toBe(1);
    expect(log.health().ok).toBe(false); // the writer believes the batch failed and keeps it queued
    expect(log.queueDepth).toBe(3);
    for (let i = 4; i <= 5; i++) log.record(step({ workflowId: 'wf-1', stepNo: i }), ok());
    await log.flush();
    expect(log.queueDepth).toBe(0);
    const { rows } = await pg.query<{ step: number; n: number }>("SELECT step, count(*)::int AS n FROM audit WHERE workflow_id = 'wf-1' GROUP BY step ORDER BY step");
    expect(rows).toEqual([1, 2, 3, 4, 5].map((s) => ({ step: s, n: 1 })));
    expect(await log.verify()).toMatchObject({ ok: true, records: 5 });
    // A retried batch none of which landed (the failure came before COMMIT) is written whole.
    log.record(step({ workflowId: 'wf-2', stepNo: 1 }), ok());
    const failing: Postgres = { ...db, withLockReading: () => Promise.reject(new Error('Connection terminated unexpectedly')) };
    const real = db.withLockReading;
    db.withLockReading = failing.withLockReading;
    await log.flush();
    db.withLockReading = real;
    await log.flush();
    expect(await log.verify()).toMatchObject({ ok: true, records: 6 });
    await log.close();
    await pg.close();
  });
});

// Opening a PgAuditLog on a fresh test database per store dir (opened again on the same dir, the same database).
import { pino } from 'pino';
import { openPostgres, type Postgres } from '../../../src/stores/postgres/pool.js';
import { PgAuditLog, type PgAuditLogOptions } from '../../../src/stores/postgres/audit/store.js';
import { testPostgres, type TestPostgres } from '../../helpers/shared-stores.js';

export const silent = pino({ level: 'silent' });
const databases = new Map<string, Promise<TestPostgres>>();

/** The test database of `dir`, created on first use. */
export function databaseFor(dir: string): Promise<TestPostgres> {
  let db = databases.get(dir);
  if (!db) {
    db = testPostgres();
    databases.set(dir, db);
  }
  return db;
}

/** Drop every database made here (call from afterAll, before stopTestPostgres). */
export async function dropDatabases(): Promise<void> {
  const all = [...databases.values()];
  databases.clear();
  for (const db of all) await (await db).close();
}

export async function openPgAudit(dir: string, opts: PgAuditLogOptions = {}): Promise<{ log: PgAuditLog; pg: Postgres; close(): Promise<void> }> {
  const pg = await openPostgres({ url: (await databaseFor(dir)).url, log: silent });
  const log = await PgAuditLog.open(pg, { flushMs: 60_000, ...opts });
  return {
    log,
    pg,
    close: async () => {
      await log.close();
      await pg.close();
    },
  };
}

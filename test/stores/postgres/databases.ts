// PostgreSQL databases for the contract suites: one fresh database per store dir, so a durable store opened again
// on the same dir finds what it wrote; dropped with the file's throwaway server in afterAll.
import { pino } from 'pino';
import { openPostgres, type Postgres } from '../../../src/stores/postgres/pool.js';
import { sharedStoresUnavailable, stopTestPostgres, testPostgres, type TestPostgres } from '../../helpers/shared-stores.js';

const byDir = new Map<string, Promise<TestPostgres>>();
const opened = new Set<Postgres>();

/** Why the PostgreSQL factories cannot run here (printed once per file), or undefined. */
export const pgUnavailable = sharedStoresUnavailable();

/** The database URL for a store dir (the same one each time). */
export async function pgUrlFor(dir: string): Promise<string> {
  // The promise is kept, so replicas opening on one dir at once share one database.
  let t = byDir.get(dir);
  if (!t) byDir.set(dir, (t = testPostgres()));
  return (await t).url;
}

/** A migrated pool on the dir's database; closed by dropPgDatabases() if the test did not close it. */
export async function pgFor(dir: string): Promise<Postgres> {
  const db = await openPostgres({ url: await pgUrlFor(dir), log: pino({ level: 'silent' }) });
  opened.add(db);
  const close = db.close.bind(db);
  db.close = async () => {
    if (!opened.delete(db)) return;
    await close();
  };
  return db;
}

/** Call from afterAll: closes pools, drops the databases and stops the throwaway server. */
export async function dropPgDatabases(): Promise<void> {
  for (const db of [...opened]) await db.close();
  for (const t of byDir.values()) await (await t).close();
  byDir.clear();
  await stopTestPostgres();
}

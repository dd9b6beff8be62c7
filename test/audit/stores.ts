// What the audit store suites share: stores on temp data dirs, closed after each test, and reads through another
// connection, as another process would see the file.
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import { closeDatabase, databasePath, openDatabase, type Db } from '../../src/audit/db.js';
import { AuditStore, type AuditStoreOptions } from '../../src/audit/store.js';
import { removeTempDirs, tempDataDir } from './helpers.js';

const open: Array<{ db: Db; store: AuditStore }> = [];

afterEach(() => {
  for (const { db, store } of open.splice(0)) {
    store.close();
    closeDatabase(db);
  }
  removeTempDirs();
});

/** A store on a fresh (or the given) data dir; closed with its database after the test. */
export function openStore(opts: AuditStoreOptions = {}, dataDir = tempDataDir()): { db: Db; store: AuditStore; dataDir: string } {
  const db = openDatabase({ dataDir, durability: opts.durability });
  const store = new AuditStore(db, opts);
  open.push({ db, store });
  return { db, store, dataDir };
}

/** Run `read` on a read-only connection of its own, so only committed rows show. */
export function readCommitted<T>(dataDir: string, read: (other: Database.Database) => T): T {
  const other = new Database(databasePath(dataDir), { readonly: true });
  try {
    return read(other);
  } finally {
    other.close();
  }
}

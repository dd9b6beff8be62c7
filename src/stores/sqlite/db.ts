/** The gateway's embedded SQLite database: one file in the data dir, WAL, and versioned per-room migrations. */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { MigrationRegistry } from '../migration-registry.js';
import { auditMigrations, type Migration } from './audit-migrations.js';

export type Db = Database.Database;
export type { Migration };

export const DB_FILE_NAME = 'switchyard.db';

export interface OpenDatabaseOptions {
  dataDir: string;
  /** 'strict' commits with synchronous=FULL so a committed step survives power loss, not only a crash. */
  durability?: 'batched' | 'strict';
}

const registry = new MigrationRegistry();
/** Databases opened by this process, so a migration registered after open still reaches them. */
const openDatabases = new Set<Db>();

/**
 * Add a room's migration. Versions are numbered per room and applied in ascending order, once per database.
 * Registering the same (room, version) twice with identical SQL is a no-op; with different SQL it throws,
 * because a shipped migration must never change — add a new version instead.
 */
export function registerMigration(room: string, version: number, sql: string): void {
  if (!registry.add(room, version, sql)) return;
  for (const db of openDatabases) {
    if (db.open) applyMigrations(db);
    else openDatabases.delete(db);
  }
}

for (const m of auditMigrations) registerMigration(m.room, m.version, m.sql);

/** Every registered migration, each room's versions ascending. */
export function registeredMigrations(): Migration[] {
  return registry.all();
}

/** Apply pending migrations; safe to call repeatedly. Returns the (room, version) pairs it applied. */
export function applyMigrations(db: Db): Array<{ room: string; version: number }> {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    room TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL, PRIMARY KEY (room, version))`);
  const isApplied = db.prepare<[string, number], { one: number }>(
    'SELECT 1 AS one FROM schema_migrations WHERE room = ? AND version = ?',
  );
  const markApplied = db.prepare('INSERT INTO schema_migrations (room, version, applied_at) VALUES (?, ?, ?)');
  const applied: Array<{ room: string; version: number }> = [];
  for (const m of registeredMigrations()) {
    if (isApplied.get(m.room, m.version)) continue;
    const run = db.transaction(() => {
      db.exec(m.sql);
      markApplied.run(m.room, m.version, Date.now());
    });
    try {
      run.immediate();
    } catch (err) {
      throw new Error(`migration ${m.room} v${m.version} failed: ${(err as Error).message}; fix the SQL or the database and restart`);
    }
    applied.push({ room: m.room, version: m.version });
  }
  return applied;
}

/** The database file path for a data dir. */
export function databasePath(dataDir: string): string {
  return join(resolve(dataDir), DB_FILE_NAME);
}

/** Open (creating if needed) `<dataDir>/switchyard.db`, set pragmas and bring the schema up to date. */
export function openDatabase(opts: OpenDatabaseOptions): Db {
  mkdirSync(resolve(opts.dataDir), { recursive: true });
  const file = databasePath(opts.dataDir);
  let db: Db;
  try {
    db = new Database(file);
  } catch (err) {
    throw new Error(`cannot open ${file}: ${(err as Error).message}; check that the data dir is writable or pass --data DIR`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'strict' ? 'FULL' : 'NORMAL'}`);
  // Another process (e.g. `audit verify`) may hold a read lock briefly; wait instead of failing.
  db.pragma('busy_timeout = 5000');
  applyMigrations(db);
  openDatabases.add(db);
  return db;
}

/** Open an existing database read-only without migrating it (for `audit verify`); undefined when the file is missing. */
export function openDatabaseReadOnly(dataDir: string): Db | undefined {
  const file = databasePath(dataDir);
  if (!existsSync(file)) return undefined;
  return new Database(file, { readonly: true, fileMustExist: true });
}

/** Close a database opened here (checkpointing the WAL back into the main file). */
export function closeDatabase(db: Db): void {
  openDatabases.delete(db);
  if (db.open) db.close();
}

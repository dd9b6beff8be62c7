import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { applyMigrations, closeDatabase, databasePath, openDatabase, registerMigration } from '../../src/audit/db.js';
import { removeTempDirs, tempDataDir } from './helpers.js';

afterEach(removeTempDirs);

describe('database', () => {
  it('opens in WAL with the configured synchronous level and applies migrations once', () => {
    const dataDir = tempDataDir();
    const db = openDatabase({ dataDir, durability: 'strict' });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(applyMigrations(db)).toEqual([]);
    closeDatabase(db);
    const again = openDatabase({ dataDir });
    expect(again.pragma('synchronous', { simple: true })).toBe(1);
    const rows = again.prepare("SELECT room, version FROM schema_migrations WHERE room = 'audit'").all();
    expect(rows).toEqual([{ room: 'audit', version: 1 }, { room: 'audit', version: 2 }]);
    closeDatabase(again);
  });

  it('lets another room register migrations, before or after a database is open', () => {
    const dataDir = tempDataDir();
    const db = openDatabase({ dataDir });
    registerMigration('limitstest', 1, 'CREATE TABLE limits_usage (agent TEXT PRIMARY KEY, used INTEGER NOT NULL)');
    registerMigration('limitstest', 1, 'CREATE TABLE limits_usage (agent TEXT PRIMARY KEY, used INTEGER NOT NULL)');
    expect(() => registerMigration('limitstest', 1, 'CREATE TABLE other (x)')).toThrow(/version 2/);
    db.prepare("INSERT INTO limits_usage VALUES ('a', 1)").run();
    registerMigration('limitstest', 2, 'ALTER TABLE limits_usage ADD COLUMN window TEXT');
    closeDatabase(db);
    const check = new Database(databasePath(dataDir));
    expect(check.prepare('SELECT version FROM schema_migrations WHERE room = ? ORDER BY version').all('limitstest')).toEqual([{ version: 1 }, { version: 2 }]);
    expect(check.prepare('SELECT agent, used, window FROM limits_usage').all()).toEqual([{ agent: 'a', used: 1, window: null }]);
    check.close();
    expect(() => registerMigration('Bad Room', 1, 'SELECT 1')).toThrow(/room/);
  });
});

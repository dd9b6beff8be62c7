import { describe, expect, it } from 'vitest';
import { applyMigrations, closeDatabase } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import { ok, step } from './helpers.js';
import { openStore } from './stores.js';

/** The trigger a database from before audit-search v3 indexes its rows with. */
const OLD_TRIGGER = `CREATE TRIGGER audit_fts_insert AFTER INSERT ON audit BEGIN
  INSERT INTO audit_fts (rowid, args) VALUES (new.id, new.args);
END`;

function ftsIntact(db: AuditStore['db']): void {
  // Throws SQLITE_CORRUPT_VTAB when the index and the rows disagree (a row missing, or indexed twice).
  db.prepare("INSERT INTO audit_fts (audit_fts, rank) VALUES ('integrity-check', 1)").run();
}

describe('argument search index', () => {
  it('is filled by the flush, once per batch, with no per-row trigger', () => {
    const { store, db } = openStore({ flushMs: 60_000 });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_fts_insert'").get()).toBeUndefined();
    for (let i = 1; i <= 30; i++) store.record(step({ workflowId: 'wf-i', stepNo: i, args: { q: i % 3 === 0 ? `drop table t${i}` : 'select 1' } }), ok());
    store.flush();
    for (let i = 31; i <= 40; i++) store.record(step({ workflowId: 'wf-i', stepNo: i, args: { q: 'drop it' } }), ok());
    expect(store.queryAudit({ q: 'drop', limit: 100 }).records.map((r) => r.step)).toEqual([40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 27, 24, 21, 18, 15, 12, 9, 6, 3]);
    ftsIntact(db);
  });

  it('continues a database written with the per-row trigger: old rows stay found, new ones are indexed once', () => {
    const { store, db, dataDir } = openStore({ flushMs: 60_000 });
    for (let i = 1; i <= 5; i++) store.record(step({ workflowId: 'wf-old', stepNo: i, args: { q: `older ${i}` } }), ok());
    store.flush();
    // Put the database back in the previous format: the insert trigger, and audit-search v3 not applied.
    db.exec(OLD_TRIGGER);
    db.prepare("DELETE FROM schema_migrations WHERE room = 'audit-search' AND version = 3").run();
    store.close();
    closeDatabase(db);
    const again = openStore({ flushMs: 60_000 }, dataDir);
    expect(again.db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_fts_insert'").get()).toBeUndefined();
    for (let i = 6; i <= 8; i++) again.store.record(step({ workflowId: 'wf-old', stepNo: i, args: { q: `older ${i}` } }), ok());
    expect(again.store.queryAudit({ q: 'older' }).records.map((r) => r.step)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    ftsIntact(again.db);
    expect(again.store.verify()).toMatchObject({ ok: true, records: 8 });
    expect(applyMigrations(again.db)).toEqual([]);
  });
});

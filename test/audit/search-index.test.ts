import { describe, expect, it } from 'vitest';
import { applyMigrations, closeDatabase } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import { caller, ok, refused, step } from './helpers.js';
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

  it('user and reason filters read their partial indexes, which hold only rows with a user or a reason', () => {
    const { store, db } = openStore({ flushMs: 60_000 });
    const service = caller('svc', { user: undefined });
    for (let i = 1; i <= 6; i++) {
      const who = i % 2 === 0 ? caller() : service;
      store.record(step({ workflowId: 'wf-p', stepNo: i, caller: who }), i % 3 === 0 ? refused('policy_denied') : ok());
    }
    expect(store.queryAudit({ user: 'alice@example.com' }).records.map((r) => r.step)).toEqual([6, 4, 2]);
    expect(store.queryAudit({ reason: 'policy_denied' }).records.map((r) => r.step)).toEqual([6, 3]);
    expect(store.queryAudit({ reason: 'policy_denied', user: 'alice@example.com' }).records.map((r) => r.step)).toEqual([6]);
    // The statements query.ts builds for these filters (keyset page after a cursor included).
    const plan = (sql: string, ...params: Array<string | number>) =>
      db.prepare<Array<string | number>, { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(...params).map((r) => r.detail).join(' | ');
    expect(plan('SELECT * FROM audit WHERE "user" = ? ORDER BY id DESC LIMIT ?', 'alice@example.com', 51)).toContain('USING INDEX audit_user_id');
    expect(plan('SELECT * FROM audit WHERE reason = ? AND id < ? ORDER BY id DESC LIMIT ?', 'policy_denied', 9, 51)).toContain('USING INDEX audit_reason_id');
    const definition = (index: string) => db.prepare<[string], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(index)!.sql;
    expect(definition('audit_user_id')).toMatch(/WHERE "user" IS NOT NULL$/);
    expect(definition('audit_reason_id')).toMatch(/WHERE reason IS NOT NULL$/);
    store.close();
  });
});

import { createHash } from 'node:crypto';
import { renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openAudit } from '../../src/audit/index.js';
import { canonicalRow, type AuditRow } from '../../src/audit/chain.js';
import { closeDatabase, openDatabase, type Db } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import { runAuditVerify } from '../../src/audit/verify-cli.js';
import { ok, removeTempDirs, step, tempDataDir } from './helpers.js';

function capture(): { out: string[]; err: string[]; io: { out: (l: string) => void; err: (l: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

function seed(dataDir: string, n: number): void {
  const audit = openAudit({ dataDir, audit: { enabled: true, durability: 'batched', flushMs: 100, redact: [], modelBodies: 'none' as const } });
  const id = audit.workflows.begin({ caller: { agentId: 'local', principal: 'local', chain: ['local'], via: 'local' }, kind: 'mcp' });
  for (let i = 0; i < n; i++) audit.store.record(step({ workflowId: id, stepNo: audit.workflows.nextStep(id) }), ok());
  audit.close();
}

afterEach(removeTempDirs);

describe('switchyard audit verify', () => {
  it('passes an untouched trail', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 12);
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(0);
    expect(out).toEqual(['ok: 12 records verified, HMAC-keyed']);
  });

  it('fails at exactly the tampered record, naming workflow and step', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 12);
    const db = openDatabase({ dataDir });
    db.prepare('UPDATE audit SET duration_ms = 0.5 WHERE id = 7').run();
    const wf = (db.prepare('SELECT workflow_id AS w FROM audit WHERE id = 7').get() as { w: string }).w;
    closeDatabase(db);
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(1);
    expect(out).toEqual([`broken at record 7 (workflow ${wf} step 7): its stored fields do not match its hash: the record was altered after it was written`]);
  });

  it('explains a missing database and exits 1', () => {
    const { err, io } = capture();
    expect(runAuditVerify(`${tempDataDir()}/nothing-here`, io)).toBe(1);
    expect(err[0]).toMatch(/no audit database at .*switchyard\.db; pass --data DIR/);
  });
});

/** Run `fn` on the database with a plain connection, as someone with write access to the file would. */
function tamper(dataDir: string, fn: (db: Db) => void): void {
  const db = openDatabase({ dataDir });
  try {
    fn(db);
  } finally {
    closeDatabase(db);
  }
}

/** Recompute every row's hash with plain SHA-256 and point the head at the new end, as a forger without the key would. */
function rehashPlain(db: Db): void {
  let prev = '0'.repeat(64);
  const rows = db.prepare('SELECT * FROM audit ORDER BY id').all() as AuditRow[];
  const update = db.prepare('UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?');
  for (const row of rows) {
    const hash = createHash('sha256').update(prev).update(canonicalRow(row)).digest('hex');
    update.run(prev, hash, row.id);
    prev = hash;
  }
  const last = rows.at(-1)!;
  db.prepare('UPDATE audit_head SET last_id = ?, last_hash = ?, records = ?').run(last.id, prev, rows.length);
}

describe('switchyard audit verify: truncation and keyed chain', () => {
  it('creates the audit key once, readable by its owner only, and reuses it', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 2);
    const keyFile = join(dataDir, 'keys', 'audit-hmac.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const before = statSync(keyFile).mtimeMs;
    seed(dataDir, 2);
    expect(statSync(keyFile).mtimeMs).toBe(before);
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(0);
    expect(out).toEqual(['ok: 4 records verified, HMAC-keyed']);
  });

  it('exits 1 naming the missing records when the newest ones are deleted', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 12);
    tamper(dataDir, (db) => db.prepare('DELETE FROM audit WHERE id > 9').run());
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(1);
    expect(out).toEqual(['broken: the trail ends at record 9 but the head says it ends at record 12: records 10 to 12 were deleted']);
  });

  it('exits 1 when every record is deleted, or the head row with them', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 3);
    tamper(dataDir, (db) => db.prepare('DELETE FROM audit').run());
    const first = capture();
    expect(runAuditVerify(dataDir, first.io)).toBe(1);
    expect(first.out[0]).toContain('records 1 to 3 were deleted');
    tamper(dataDir, (db) => db.prepare('DELETE FROM audit_head').run());
    const second = capture();
    expect(runAuditVerify(dataDir, second.io)).toBe(1);
    expect(second.out[0]).toContain('the audit head is missing');
  });

  it('exits 1 when the chain is rewritten and rehashed with plain SHA-256', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 6);
    tamper(dataDir, (db) => {
      db.prepare("UPDATE audit SET outcome = 'refused', reason = 'policy_denied' WHERE id = 4").run();
      rehashPlain(db);
    });
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(1);
    expect(out[0]).toMatch(/^broken: the audit head does not match its MAC/);
  });

  it('exits 1 when the rehashed chain also claims to be unkeyed', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 6);
    tamper(dataDir, (db) => {
      db.prepare('DELETE FROM audit WHERE id = 6').run();
      rehashPlain(db);
      db.prepare('UPDATE audit_head SET mac = NULL, keyed_from = NULL').run();
    });
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(1);
    expect(out[0]).toMatch(/^broken: the audit head is not keyed although an audit key exists/);
  });

  it('needs the key of a keyed trail, and refuses a wrong one', () => {
    const dataDir = tempDataDir();
    seed(dataDir, 3);
    const moved = join(tempDataDir(), 'audit.key');
    renameSync(join(dataDir, 'keys', 'audit-hmac.key'), moved);
    const without = capture();
    expect(runAuditVerify(dataDir, without.io)).toBe(1);
    expect(without.out[0]).toContain('pass the audit key with --key FILE');
    const withKey = capture();
    expect(runAuditVerify(dataDir, withKey.io, { keyFile: moved })).toBe(0);
    const wrong = join(tempDataDir(), 'wrong.key');
    writeFileSync(wrong, `${'ab'.repeat(32)}\n`);
    const wrongKey = capture();
    expect(runAuditVerify(dataDir, wrongKey.io, { keyFile: wrong })).toBe(1);
    expect(wrongKey.out[0]).toContain('does not match its MAC');
  });

  it('keeps verifying after retention pruning, and catches a deleted prefix passed off as pruning', () => {
    const dataDir = tempDataDir();
    const audit = openAudit({ dataDir, audit: { enabled: true, durability: 'batched', flushMs: 100, redact: [], modelBodies: 'none' as const } });
    const wf = audit.workflows.begin({ caller: { agentId: 'local', principal: 'local', chain: ['local'], via: 'local' }, kind: 'mcp' });
    const now = Date.now();
    for (let i = 0; i < 8; i++) {
      audit.store.record(step({ workflowId: wf, stepNo: audit.workflows.nextStep(wf), startedAt: now - (i < 4 ? 40 : 1) * 86_400_000 }), ok());
    }
    expect(audit.store.prune(30, now)).toEqual({ deleted: 4, anchorId: 4 });
    audit.store.record(step({ workflowId: wf, stepNo: audit.workflows.nextStep(wf) }), ok());
    expect(audit.store.verify()).toMatchObject({ ok: true, records: 5, keyed: true });
    audit.close();
    const pruned = capture();
    expect(runAuditVerify(dataDir, pruned.io)).toBe(0);
    expect(pruned.out[0]).toContain('ok: 5 records verified (from the retention anchor after record 4)');

    tamper(dataDir, (db) => {
      const row = db.prepare('SELECT id, hash FROM audit WHERE id = 6').get() as { id: number; hash: string };
      db.prepare('DELETE FROM audit WHERE id <= 6').run();
      db.prepare('INSERT INTO audit_anchor (last_id, last_hash, pruned_at, deleted) VALUES (?, ?, ?, 2)').run(row.id, row.hash, now);
    });
    const forged = capture();
    expect(runAuditVerify(dataDir, forged.io)).toBe(1);
    expect(forged.out[0]).toBe('broken: the head counts 5 records but 3 are present: 2 records were deleted');
  });

  it('keys an unkeyed trail from its next record on and still verifies the older, plain records', () => {
    const dataDir = tempDataDir();
    const db = openDatabase({ dataDir });
    const plain = new AuditStore(db);
    for (let i = 1; i <= 3; i++) plain.record(step({ workflowId: 'wf-old', stepNo: i }), ok());
    plain.close();
    closeDatabase(db);
    seed(dataDir, 2);
    const { out, io } = capture();
    expect(runAuditVerify(dataDir, io)).toBe(0);
    expect(out).toEqual(['ok: 5 records verified, HMAC-keyed']);
    tamper(dataDir, (d) => d.prepare("UPDATE audit SET tool = 'other' WHERE id = 5").run());
    const broken = capture();
    expect(runAuditVerify(dataDir, broken.io)).toBe(1);
    expect(broken.out[0]).toMatch(/^broken at record 5 /);
  });

  it('uses audit.hmacKeyFile when set, and refuses to start when that file is missing', () => {
    const dataDir = tempDataDir();
    const keyFile = join(tempDataDir(), 'mounted.key');
    const audit = { enabled: true, durability: 'batched' as const, flushMs: 100, redact: [], modelBodies: 'none' as const, hmacKeyFile: keyFile };
    expect(() => openAudit({ dataDir, audit })).toThrow(`the audit key ${keyFile} does not exist; create it with \`openssl rand -hex 32 > ${keyFile} && chmod 600 ${keyFile}\``);
    writeFileSync(keyFile, `${'3c'.repeat(32)}\n`, { mode: 0o600 });
    const opened = openAudit({ dataDir, audit });
    opened.store.record(step({ workflowId: 'wf-k', stepNo: 1 }), ok());
    opened.close();
    const withoutKey = capture();
    expect(runAuditVerify(dataDir, withoutKey.io)).toBe(1);
    const withKey = capture();
    expect(runAuditVerify(dataDir, withKey.io, { keyFile })).toBe(0);
    expect(withKey.out).toEqual(['ok: 1 records verified, HMAC-keyed']);
    writeFileSync(keyFile, 'short');
    expect(() => openAudit({ dataDir, audit })).toThrow(/too short \(5 bytes\)/);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { openAudit } from '../../src/audit/index.js';
import { closeDatabase, openDatabase } from '../../src/audit/db.js';
import { runAuditVerify } from '../../src/audit/verify-cli.js';
import { ok, removeTempDirs, step, tempDataDir } from './helpers.js';

function capture(): { out: string[]; err: string[]; io: { out: (l: string) => void; err: (l: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

function seed(dataDir: string, n: number): void {
  const audit = openAudit({ dataDir, audit: { enabled: true, durability: 'batched', flushMs: 100, redact: [] } });
  const id = audit.workflows.begin({ caller: { agentId: 'local', chain: ['local'], via: 'local' }, kind: 'mcp' });
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
    expect(out).toEqual(['ok: 12 records verified']);
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

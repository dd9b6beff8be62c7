// Tamper evidence (issue 4): after real calls through the gateway, changing one stored field with SQL makes
// `switchyard audit verify` exit 1 naming that record; an untouched copy of the same data dir verifies.
import { createHash } from 'node:crypto';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalRow, type AuditRow } from '../../src/audit/chain.js';
import { connectClient, scratch } from '../helpers/gateway.js';
import {
  admin,
  allAudit,
  call,
  fixtureHome,
  launch,
  runCli,
  stopEverything,
  type AuditRecordView,
  workflowOfMarker,
  type GatewayHome,
} from '../helpers/audit-harness.js';

let home: GatewayHome;
let records: AuditRecordView[];

beforeAll(async () => {
  home = fixtureHome();
  const gw = await launch(home);
  for (let s = 0; s < 2; s++) {
    const client = await connectClient(gw.mcpUrl);
    for (let i = 0; i < 4; i++) expect((await call(client, 'fx__echo', { text: `s${s}-${i}` })).ok).toBe(true);
    // An admin pause makes the fifth call a refusal, so the trail holds refused steps too.
    await admin(gw.url, `/workflows/${await workflowOfMarker(gw.url, `s${s}-0`)}/pause`, 'POST');
    const refused = await call(client, 'fx__echo', { text: `s${s}-4` });
    expect(!refused.ok && refused.data.reason).toBe('workflow_paused');
  }
  records = await allAudit(gw.url);
  await gw.stop();
});

afterAll(stopEverything);

function copyData(): string {
  const dir = join(scratch('switchyard-tamper-'), 'data');
  cpSync(home.dataDir, dir, { recursive: true });
  return dir;
}

function sql(dataDir: string, statement: string, ...params: unknown[]): number {
  const db = new Database(join(dataDir, 'switchyard.db'));
  try {
    return db.prepare(statement).run(...params).changes;
  } finally {
    db.close();
  }
}

describe('switchyard audit verify', () => {
  it('passes on the untouched trail', async () => {
    expect(records.length).toBe(10);
    expect(records.filter((r) => r.outcome === 'refused')).toHaveLength(2);
    const pristine = copyData();
    const { code, stdout } = await runCli(['audit', 'verify', '--data', pristine]);
    expect(code, stdout).toBe(0);
    expect(stdout).toContain('ok: 10 records verified');
    expect((await runCli(['audit', 'verify', '--data', home.dataDir])).code).toBe(0);
  });

  it('fails naming the record whose outcome was rewritten, while an untouched copy still passes', async () => {
    const pristine = copyData();
    const tampered = copyData();
    // Turn the first refusal into a success, as someone covering their tracks would.
    const victim = records.filter((r) => r.outcome === 'refused').at(-1)!;
    expect(sql(tampered, "UPDATE audit SET outcome = 'ok', reason = NULL WHERE id = ?", victim.id)).toBe(1);

    const broken = await runCli(['audit', 'verify', '--data', tampered]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`broken at record ${victim.id} `);
    expect(broken.stdout).toContain(`workflow ${victim.workflowId} step ${victim.step}`);

    const ok = await runCli(['audit', 'verify', '--data', pristine]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  });

  it('fails at the record after one that was deleted', async () => {
    const tampered = copyData();
    const sorted = [...records].sort((a, b) => a.id - b.id);
    const gone = sorted[3]!;
    expect(sql(tampered, 'DELETE FROM audit WHERE id = ?', gone.id)).toBe(1);
    const broken = await runCli(['audit', 'verify', '--data', tampered]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`broken at record ${sorted[4]!.id} `);
  });

  it('fails on a rewritten argument', async () => {
    const tampered = copyData();
    const victim = records.find((r) => r.args?.text === 's1-2')!;
    expect(sql(tampered, 'UPDATE audit SET args = ? WHERE id = ?', JSON.stringify({ text: 's1-2 (edited)' }), victim.id)).toBe(1);
    const broken = await runCli(['audit', 'verify', '--data', tampered]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`broken at record ${victim.id} `);
  });

  it('fails naming the missing records when the newest ones are deleted', async () => {
    const tampered = copyData();
    const sorted = [...records].sort((a, b) => a.id - b.id);
    const last = sorted.at(-1)!.id;
    expect(sql(tampered, 'DELETE FROM audit WHERE id > ?', last - 3)).toBe(3);
    const broken = await runCli(['audit', 'verify', '--data', tampered]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`the trail ends at record ${last - 3} but the head says it ends at record ${last}: records ${last - 2} to ${last} were deleted`);
  });

  it('fails when rows are rewritten and the chain and head rehashed with plain SHA-256', async () => {
    const tampered = copyData();
    const db = new Database(join(tampered, 'switchyard.db'));
    try {
      db.prepare("UPDATE audit SET outcome = 'ok', reason = NULL WHERE outcome = 'refused'").run();
      let prev = '0'.repeat(64);
      const rows = db.prepare('SELECT * FROM audit ORDER BY id').all() as AuditRow[];
      for (const row of rows) {
        const hash = createHash('sha256').update(prev).update(canonicalRow(row)).digest('hex');
        db.prepare('UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?').run(prev, hash, row.id);
        prev = hash;
      }
      db.prepare('UPDATE audit_head SET last_hash = ?').run(prev);
    } finally {
      db.close();
    }
    const broken = await runCli(['audit', 'verify', '--data', tampered]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('broken: the audit head does not match its MAC');
  });

  it('exits 1 with a clear message when there is no database', async () => {
    const empty = scratch('switchyard-empty-');
    expect(existsSync(join(empty, 'switchyard.db'))).toBe(false);
    const res = await runCli(['audit', 'verify', '--data', empty]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no audit database');
  });
});

// The shared audit trail on PostgreSQL: two replicas appending at once to one verifiable chain, tampering found by
// `audit verify`, strict records surviving a SIGKILLed writer, a wrong key refused, bad input stored safely.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadSharedAuditKey } from '../../../src/audit/head.js';
import { runPgAuditVerify } from '../../../src/audit/verify-pg-cli.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { openPostgres } from '../../../src/stores/postgres/pool.js';
import { PgAuditLog } from '../../../src/stores/postgres/audit/store.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import { startPostgres } from '../../helpers/shared-stores.js';
import { CLI, requireBuild, runCommand } from '../../helpers/gateway.js';
import { pino } from 'pino';
import { caller, ok, step } from '../../audit/helpers.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { openPgAudit } from './audit-factory.js';
import { dropPgDatabases, pgFor, pgUnavailable, pgUrlFor } from './databases.js';

const skip = pgUnavailable;
if (skip) console.log(`skipping the PostgreSQL audit tests: ${skip}`);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function capture(): { out: string[]; err: string[]; io: { out: (l: string) => void; err: (l: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

function keyFile(key: Buffer): string {
  const file = join(storeDir(), 'audit-hmac.key');
  writeFileSync(file, key.toString('hex'), { mode: 0o600 });
  return file;
}

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

describe.skipIf(skip)('PgAuditLog across replicas', () => {
  it('two replicas appending at once build one chain that verifies, every record once', async () => {
    const dir = storeDir();
    const key = randomBytes(32);
    // Started at the same moment on an empty database: one migrates and creates the head, the other finds it.
    const [a, b] = await Promise.all([
      openPgAudit(dir, { hmacKey: key, flushMs: 2, maxBatch: 7, replica: 'a' }),
      openPgAudit(dir, { hmacKey: key, durability: 'strict', replica: 'b' }),
    ]);
    // Two replicas busy at once: b commits each step before the next, a flushes every seven.
    const runA = async () => {
      for (let i = 1; i <= 150; i++) {
        a.log.record(step({ workflowId: 'wf-a', stepNo: i }), ok());
        if (i % 7 === 0) await a.log.flush();
      }
    };
    const runB = async () => {
      for (let i = 1; i <= 150; i++) await b.log.record(step({ workflowId: 'wf-b', stepNo: i }), ok());
    };
    await Promise.all([runA(), runB()]);
    await a.log.flush();
    for (const r of [await a.log.verify(), await b.log.verify()]) expect(r).toEqual({ ok: true, records: 300, keyed: true });
    const rows = await a.pg.query<{ replica: string; n: number; ids: number; min: string; max: string }>(
      'SELECT replica, count(*)::int AS n, count(DISTINCT id)::int AS ids FROM audit GROUP BY replica ORDER BY replica',
    );
    expect(rows.rows).toEqual([
      { replica: 'a', n: 150, ids: 150 },
      { replica: 'b', n: 150, ids: 150 },
    ]);
    const span = await a.pg.query<{ min: string; max: string }>('SELECT min(id) AS min, max(id) AS max FROM audit');
    expect(span.rows[0]).toEqual({ min: '1', max: '300' });
    // Both replicas took turns on the chain: their records interleave instead of one writing everything first.
    const order = (await a.pg.query<{ replica: string }>('SELECT replica FROM audit ORDER BY id')).rows.map((r) => r.replica).join('');
    expect(order.match(/(a+|b+)/g)!.length).toBeGreaterThan(2);
    const stepsOfB = (await b.log.queryAudit({ workflowId: 'wf-b', limit: 1000 })).records.map((r) => r.step).sort((x, y) => x - y);
    expect(stepsOfB).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    await a.close();
    await b.close();
  });

  it('a replica with another audit key refuses to start', async () => {
    const dir = storeDir();
    const first = await openPgAudit(dir, { hmacKey: randomBytes(32) });
    await first.log.record(step({ workflowId: 'wf', stepNo: 1 }), ok());
    await first.log.flush();
    await expect(openPgAudit(dir, { hmacKey: randomBytes(32) })).rejects.toThrow(/does not match its MAC.*same audit\.hmacKeyFile/);
    await first.close();
  });

  it('audit verify names the record altered with SQL, and the newest records deleted', async () => {
    const dir = storeDir();
    const key = randomBytes(32);
    const { log, pg, close } = await openPgAudit(dir, { hmacKey: key });
    for (let i = 1; i <= 12; i++) await log.record(step({ workflowId: 'wf-t', stepNo: i }), ok());
    await log.flush();
    const url = await pgUrlFor(dir);
    const file = keyFile(key);
    const good = capture();
    expect(await runPgAuditVerify(url, good.io, { keyFile: file })).toBe(0);
    expect(good.out).toEqual(['ok: 12 records verified, HMAC-keyed']);

    await pg.query("UPDATE audit SET outcome = 'refused' WHERE id = 7");
    const altered = capture();
    expect(await runPgAuditVerify(url, altered.io, { keyFile: file })).toBe(1);
    expect(altered.out).toEqual(['broken at record 7 (workflow wf-t step 7): its stored fields do not match its hash: the record was altered after it was written']);

    await pg.query("UPDATE audit SET outcome = 'ok' WHERE id = 7");
    await pg.query('DELETE FROM audit WHERE id > 9');
    const truncated = capture();
    expect(await runPgAuditVerify(url, truncated.io, { keyFile: file })).toBe(1);
    expect(truncated.out).toEqual(['broken: the trail ends at record 9 but the head says it ends at record 12: records 10 to 12 were deleted']);

    const keyless = capture();
    expect(await runPgAuditVerify(url, keyless.io)).toBe(1);
    expect(keyless.out[0]).toMatch(/^broken: the trail is keyed: pass the audit key/);
    await close();
  });

  it('the switchyard command verifies the trail store.postgres names, with audit.hmacKeyFile from gateway.yaml', async () => {
    requireBuild();
    const dir = storeDir();
    const key = randomBytes(32);
    const { log, pg, close } = await openPgAudit(dir, { hmacKey: key });
    for (let i = 1; i <= 5; i++) await log.record(step({ workflowId: 'wf-c', stepNo: i }), ok());
    await log.flush();
    const home = storeDir();
    writeFileSync(join(home, 'gateway.yaml'), `store:\n  postgres: ${await pgUrlFor(dir)}\naudit:\n  hmacKeyFile: ./audit.key\n`);
    writeFileSync(join(home, 'audit.key'), key.toString('hex'), { mode: 0o600 });
    const run = (args: string[]) => runCommand(process.execPath, [CLI, 'audit', 'verify', ...args], { cwd: home });
    const good = await run([]);
    expect([good.code, good.stdout.trim()], good.stderr).toEqual([0, 'ok: 5 records verified, HMAC-keyed']);
    await pg.query('DELETE FROM audit WHERE id = 3');
    const broken = await run(['--config', join(home, 'gateway.yaml')]);
    expect([broken.code, broken.stdout.trim()]).toEqual([1, "broken at record 4 (workflow wf-c step 4): its prev_hash does not match the previous record: a record before it was deleted, inserted or rewritten"]);
    const direct = await run(['--postgres', await pgUrlFor(dir), '--key', join(home, 'audit.key')]);
    expect(direct.code).toBe(1);
    await close();
  });

  it('audit verify explains a database without a trail and an unreachable server', async () => {
    const empty = await pgUrlFor(storeDir());
    const none = capture();
    expect(await runPgAuditVerify(empty, none.io)).toBe(1);
    expect(none.err[0]).toMatch(/has no audit tables; no gateway has started on it yet/);
    const down = capture();
    expect(await runPgAuditVerify('postgres://postgres@127.0.0.1:1/none', down.io)).toBe(1);
    expect(down.err[0]).toMatch(/^cannot reach PostgreSQL at .*127\.0\.0\.1:1.*start it or fix store\.postgres/);
  });

  it('strict: every acknowledged step is in the trail after the writer is killed with SIGKILL', async () => {
    const dir = storeDir();
    const key = randomBytes(32);
    const url = await pgUrlFor(dir);
    const acked = new Set<string>();
    const child = spawn(process.execPath, [`${ROOT}/node_modules/vite-node/vite-node.mjs`, 'test/fixtures/pg-audit-writer.ts', url, key.toString('hex'), 'doomed'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (b: Buffer) => {
        buf += b.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) if (l.startsWith('ack ')) acked.add(l.slice(4));
        if (acked.size >= 200 && child.exitCode === null && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', (code) => (acked.size >= 200 ? resolve() : reject(new Error(`writer exited ${code} after ${acked.size} acks: ${err}`))));
    });
    expect(await exited).toBe('SIGKILL');
    const { log, pg, close } = await openPgAudit(dir, { hmacKey: key });
    const stored = new Set((await pg.query<{ k: string }>("SELECT workflow_id || '/' || step AS k FROM audit")).rows.map((r) => r.k));
    const missing = [...acked].filter((k) => !stored.has(k));
    expect(missing).toEqual([]);
    expect(await log.verify()).toMatchObject({ ok: true, keyed: true });
    await close();
  });
});

describe.skipIf(skip)('PgAuditLog with awkward input', () => {
  it('stores NUL in names as U+FFFD and the row verifies; a search of punctuation finds nothing', async () => {
    const { log, close } = await openPgAudit(storeDir());
    await log.record(step({ workflowId: 'wf\u0000x', stepNo: 1, target: 'to\u0000ol', caller: caller('a\u0000b'), args: { text: 'nul \u0000 inside' } }), ok());
    const [r] = (await log.queryAudit()).records;
    expect(r).toMatchObject({ workflowId: 'wf\uFFFDx', tool: 'to\uFFFDol', agent: 'a\uFFFDb', args: { text: 'nul \u0000 inside' } });
    expect((await log.queryAudit({ q: 'NUL' })).records).toHaveLength(1);
    expect((await log.queryAudit({ q: '!!! ---' })).records).toEqual([]);
    expect((await log.queryAudit({ q: "it's' & | ! (" })).records).toEqual([]);
    expect(await log.verify()).toMatchObject({ ok: true, records: 1 });
    await close();
  });

  it('finds accented words in any order of case, also in a database with a C locale', async () => {
    const dir = storeDir();
    const base = await pgFor(dir);
    const name = `sytest_c_${randomBytes(4).toString('hex')}`;
    await base.query(`CREATE DATABASE ${name} LC_CTYPE 'C' LC_COLLATE 'C' TEMPLATE template0`);
    const u = new URL(await pgUrlFor(dir));
    u.pathname = `/${name}`;
    const pg = await openPostgres({ url: u.toString(), log: pino({ level: 'silent' }) });
    const log = await PgAuditLog.open(pg);
    try {
      await log.record(step({ workflowId: 'wf', stepNo: 1, args: { note: 'Crème BRÛLÉE_x éclair' } }), ok());
      await log.record(step({ workflowId: 'wf', stepNo: 2, args: { note: 'crème fraîche' } }), ok());
      const steps = async (q: string) => (await log.queryAudit({ q })).records.map((r) => r.step);
      expect(await steps('brûlée x ÉCLAIR')).toEqual([1]);
      expect(await steps('CRÈME')).toEqual([2, 1]);
      expect(await steps('br')).toEqual([]);
    } finally {
      await log.close();
      await pg.close();
      await base.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await base.close();
    }
  });

  it('a backlog is written in transactions of at most 5000 records, in order, on one flush', async () => {
    const { log, close } = await openPgAudit(storeDir(), { maxBatch: 1_000_000 });
    for (let i = 1; i <= 12_000; i++) log.record(step({ workflowId: 'wf', stepNo: i }), ok());
    await log.flush();
    expect(log.getStats()).toMatchObject({ written: 12_000, flushes: 3, queued: 0 });
    expect(await log.verify()).toMatchObject({ ok: true, records: 12_000 });
    expect((await log.queryAudit({ limit: 1 })).records[0]).toMatchObject({ id: 12_000, step: 12_000 });
    await close();
  });

  it('a bad export filter throws before streaming; a strict record after close is refused', async () => {
    const { log, close } = await openPgAudit(storeDir(), { durability: 'strict' });
    expect(() => log.exportAudit({ outcome: 'maybe' as never })).toThrow(/outcome must be one of/);
    await close();
    await expect(log.record(step({ workflowId: 'wf', stepNo: 1 }), ok())).rejects.toThrow(/closed; the step was not recorded/);
  });
});

describe.skipIf(skip)('PgAuditLog retention and outages', () => {
  it('prune takes ended workflows with the old records and leaves running ones', async () => {
    const { log, pg, close } = await openPgAudit(storeDir());
    const workflows = await PgWorkflows.open({ db: pg, bus: new MemoryControlBus() });
    const ended = workflows.begin({ caller: caller('a'), kind: 'mcp' });
    const running = workflows.begin({ caller: caller('a'), kind: 'mcp' });
    await workflows.nextStep(ended);
    await workflows.nextStep(running);
    await log.record(step({ workflowId: ended, stepNo: 1 }), ok());
    await log.record(step({ workflowId: running, stepNo: 1 }), ok());
    await workflows.setState(ended, 'done');
    expect(await log.prune(30, Date.now() + 40 * 86_400_000)).toEqual({ deleted: 2, anchorId: 2 });
    const left = (await pg.query<{ id: string }>('SELECT id FROM workflows')).rows.map((r) => r.id);
    expect(left).toEqual([running]);
    expect(await log.verify()).toMatchObject({ ok: true, records: 0, anchor: { lastId: 2 } });
    await workflows.close();
    await close();
  });

  it('while PostgreSQL is down: strict records are refused, batched ones wait and are written once it is back', async () => {
    const server = await startPostgres();
    const pg = await openPostgres({ url: server.adminUrl, log: pino({ level: 'silent' }), connectTimeoutMs: 500 });
    const key = randomBytes(32);
    const batched = await PgAuditLog.open(pg, { hmacKey: key, flushMs: 10 });
    const strict = await PgAuditLog.open(pg, { hmacKey: key, durability: 'strict' });
    try {
      await batched.record(step({ workflowId: 'wf', stepNo: 1 }), ok());
      await batched.flush();
      await server.stop();
      batched.record(step({ workflowId: 'wf', stepNo: 2 }), ok());
      batched.record(step({ workflowId: 'wf', stepNo: 3 }), ok());
      await batched.flush();
      expect(batched.health()).toMatchObject({ ok: false, queued: 2 });
      await expect(strict.record(step({ workflowId: 'wf', stepNo: 4 }), ok())).rejects.toThrow(/^audit write failed: /);
      await server.start();
      await batched.flush();
      expect(batched.health()).toEqual({ ok: true });
      expect(batched.getStats()).toMatchObject({ written: 3, dropped: 0, queued: 0 });
      await strict.record(step({ workflowId: 'wf', stepNo: 5 }), ok());
      expect((await strict.queryAudit()).records.map((r) => r.step)).toEqual([5, 3, 2, 1]);
      expect(await strict.verify()).toMatchObject({ ok: true, records: 4, keyed: true });
    } finally {
      await batched.close();
      await strict.close();
      await pg.close();
      await server.close();
    }
  });
});


describe('the shared audit key', () => {
  it('comes from audit.hmacKeyFile only: missing setting or file is an error saying what to do', () => {
    expect(() => loadSharedAuditKey(undefined)).toThrow(/set audit\.hmacKeyFile to a file all replicas mount/);
    const missing = join(storeDir(), 'nope.key');
    expect(() => loadSharedAuditKey(missing)).toThrow(/does not exist; create it with `openssl rand -hex 32/);
    const key = randomBytes(32);
    expect(loadSharedAuditKey(keyFile(key)).equals(key)).toBe(true);
  });
});

// The shared store's pool and migrations against real PostgreSQL servers: replicas migrating at once, a migration
// that must not change, a server that goes away and comes back.
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { applyPgMigrations, registerPgMigration, registeredPgMigrations } from '../../../src/stores/postgres/migrations.js';
import { openPostgres, redactUrl } from '../../../src/stores/postgres/pool.js';
import { sharedStoresUnavailable, startPostgres, stopTestPostgres, testPostgres, type ThrowawayPostgres } from '../../helpers/shared-stores.js';
import { RACE_MIGRATIONS } from './race-migrations.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`skipping PostgreSQL pool tests: ${skip}`);

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const silent = pino({ level: 'silent' });

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

function runMigrateProcess(url: string): Promise<{ again: number; versions: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}/node_modules/vite-node/vite-node.mjs`, 'test/fixtures/pg-migrate.ts', url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`pg-migrate exited ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as { again: number; versions: number[] });
    });
  });
}

describe.skipIf(skip)('PostgreSQL pool and migrations', () => {
  beforeAll(() => {
    for (const m of RACE_MIGRATIONS) registerPgMigration(m.room, m.version, m.sql);
  });
  afterAll(async () => {
    await stopTestPostgres();
  });

  it('applies each migration once when three processes and three pools start at the same moment', async () => {
    const t = await testPostgres();
    try {
      const [procs, pools] = await Promise.all([
        Promise.all([runMigrateProcess(t.url), runMigrateProcess(t.url), runMigrateProcess(t.url)]),
        Promise.all([1, 2, 3].map(() => openPostgres({ url: t.url, log: silent }))),
      ]);
      for (const p of procs) {
        expect(p.versions).toEqual([1, 2]);
        expect(p.again).toBe(0);
      }
      const db = pools[0]!;
      const rows = await db.query<{ n: number; note: string | null }>('SELECT n, note FROM racetest ORDER BY n');
      expect(rows.rows).toEqual([
        { n: 1, note: null },
        { n: 2, note: 'v2' },
      ]);
      const marks = await db.query<{ c: string }>("SELECT count(*) AS c FROM schema_migrations WHERE room = 'racetest'");
      expect(Number(marks.rows[0]!.c)).toBe(2);
      for (const p of pools) await p.close();
    } finally {
      await t.close();
    }
  }, 60_000);

  it('a migration may run longer than the statement timeout, and the connection gets its timeout back after', async () => {
    const t = await testPostgres();
    const db = await openPostgres({ url: t.url, log: silent, statementTimeoutMs: 100, max: 1 });
    try {
      await expect(db.query('SELECT pg_sleep(0.3)')).rejects.toThrow(/statement timeout/);
      const c = await db.pool.connect();
      try {
        const slow = [{ room: 'slowtest', version: 1, sql: 'SELECT pg_sleep(0.3); CREATE TABLE slowtest (n INTEGER)' }];
        expect(await applyPgMigrations(c, silent, slow)).toEqual([{ room: 'slowtest', version: 1 }]);
        expect((await c.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]!.statement_timeout).toBe('100ms');
      } finally {
        c.release();
      }
    } finally {
      await db.close();
      await t.close();
    }
  });

  it('a connection the server ends between two statements of a transaction fails that transaction, not the process', async () => {
    const t = await testPostgres();
    const db = await openPostgres({ url: t.url, log: silent, max: 2 });
    const other = await openPostgres({ url: t.url, log: silent, max: 1 });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const outcome = await db
        .transaction(async (client) => {
          const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await other.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          // The server's goodbye arrives while no statement is running on this client.
          await new Promise((r) => setTimeout(r, 300));
          await client.query('SELECT 1');
          return 'committed';
        })
        .catch((e: Error) => e);
      expect(outcome).toBeInstanceOf(Error);
      expect(uncaught).toEqual([]);
      // The pool hands out a fresh connection afterwards.
      const { rows } = await db.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0]!.one).toBe(1);
    } finally {
      process.off('uncaughtException', onUncaught);
      await other.close();
      await db.close();
    }
  });

  it('refuses to change a shipped migration and to take a bad room name', () => {
    const m = RACE_MIGRATIONS[0];
    expect(() => registerPgMigration(m.room, m.version, m.sql)).not.toThrow();
    expect(() => registerPgMigration(m.room, m.version, `${m.sql};`)).toThrow(/already registered with different SQL; add version 2 instead/);
    expect(() => registerPgMigration('Bad Room', 1, 'SELECT 1')).toThrow(/must match/);
    expect(() => registerPgMigration('racetest', 0, 'SELECT 1')).toThrow(/positive integer/);
    expect(registeredPgMigrations().filter((r) => r.room === 'racetest').map((r) => r.version)).toEqual([1, 2]);
  });

  it('a failing migration rolls back, names itself and leaves the database as it was', async () => {
    const t = await testPostgres();
    const db = await openPostgres({ url: t.url, log: silent });
    try {
      const broken = [{ room: 'brokentest', version: 1, sql: 'CREATE TABLE brokentest (n INTEGER); SELECT no_such_function()' }];
      const c0 = await db.pool.connect();
      await expect(applyPgMigrations(c0, silent, broken).finally(() => c0.release())).rejects.toThrow(/PostgreSQL migration brokentest v1 failed: .*no_such_function.*fix the SQL/);
      const table = await db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'brokentest'");
      expect(table.rowCount).toBe(0);
      const marks = await db.query("SELECT 1 FROM schema_migrations WHERE room = 'brokentest'");
      expect(marks.rowCount).toBe(0);
      // The lock was released: another connection can migrate (and fails the same way, not by hanging).
      const c = await db.pool.connect();
      try {
        await expect(applyPgMigrations(c, silent, broken)).rejects.toThrow(/brokentest v1 failed/);
      } finally {
        c.release();
      }
    } finally {
      await db.close();
      await t.close();
    }
  });

  it('an unreachable server at start is a clear error naming the URL without its password', async () => {
    const server = await startPostgres();
    const url = `postgres://postgres:s3cret@127.0.0.1:${server.port}/postgres`;
    await server.close();
    const err = await openPostgres({ url, log: silent, connectTimeoutMs: 1000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/cannot reach PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres: .*start it or fix store\.postgres/);
    expect((err as Error).message).not.toContain('s3cret');
    expect(redactUrl('not a url')).toBe('(unparseable PostgreSQL URL)');
  });

  describe('a server that stops and starts again', () => {
    let server: ThrowawayPostgres;
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(async () => {
      await server.close();
    });

    it('reports unhealthy with one log line, then healthy again with one log line, without reopening', async () => {
      const { log, lines } = capture();
      const db = await openPostgres({ url: server.adminUrl, log, probeIntervalMs: 100, connectTimeoutMs: 1000 });
      try {
        expect(db.health()).toEqual({ ok: true });
        await server.stop();
        await expect(db.query('SELECT 1')).rejects.toThrow();
        await expect(db.query('SELECT 1')).rejects.toThrow();
        expect(db.health().ok).toBe(false);
        expect(db.health().error).toBeTruthy();
        const down = lines.filter((l) => /is unreachable/.test(String(l.msg)));
        expect(down).toHaveLength(1);
        expect(down[0]!.level).toBe(50);
        await server.start();
        await vi.waitFor(() => expect(db.health()).toEqual({ ok: true }), { timeout: 10_000, interval: 50 });
        expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        expect(lines.filter((l) => /reachable again/.test(String(l.msg)))).toHaveLength(1);
        expect(lines.filter((l) => /is unreachable/.test(String(l.msg)))).toHaveLength(1);
      } finally {
        await db.close();
      }
    }, 60_000);
  });
});

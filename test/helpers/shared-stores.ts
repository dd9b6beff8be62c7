/**
 * Throwaway Redis and PostgreSQL servers for the shared-store tests: real servers on ports chosen at run time, in temp
 * folders, stopped after the file. SWITCHYARD_TEST_REDIS_URL / SWITCHYARD_TEST_PG_URL point at existing servers
 * instead (each test then gets its own key prefix or database). Without the binaries the tests skip with one line;
 * under CI=true a missing binary is an error, because CI must run them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const REDIS_SERVER = process.env.SWITCHYARD_REDIS_SERVER ?? '/usr/bin/redis-server';

function pgBinDir(): string | undefined {
  if (process.env.SWITCHYARD_PG_BIN) return process.env.SWITCHYARD_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

/** Why the shared-store tests cannot run here, or undefined when they can. Throws under CI, where they must run. */
export function sharedStoresUnavailable(): string | undefined {
  const missing: string[] = [];
  if (!process.env.SWITCHYARD_TEST_REDIS_URL && !existsSync(REDIS_SERVER)) missing.push(`redis-server (${REDIS_SERVER})`);
  if (!process.env.SWITCHYARD_TEST_PG_URL && !pgBinDir()) missing.push('PostgreSQL binaries (/usr/lib/postgresql/*/bin)');
  if (missing.length === 0) return undefined;
  const why = `shared-store tests need ${missing.join(' and ')}: apt-get install redis-server postgresql, or set SWITCHYARD_TEST_REDIS_URL / SWITCHYARD_TEST_PG_URL`;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: these tests must not be skipped)`);
  return why;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function waitForOutput(child: ChildProcess, ready: RegExp, what: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${out.slice(-2000)}`));
    }, timeoutMs);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready:\n${out.slice(-2000)}`));
    });
  });
}

/** A server process that a test may stop and start again on the same port and folder. */
interface Lifecycle {
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Start/stop/close around one spawned server: `spawnIt` starts it and resolves once it is ready; stopping sends `stopSignal`. */
async function serverLifecycle(spawnIt: () => Promise<ChildProcess>, stopSignal: NodeJS.Signals, folder: string): Promise<Lifecycle> {
  let child: ChildProcess | undefined;
  const start = async () => {
    child = await spawnIt();
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(stopSignal);
    });
  };
  await start();
  return {
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

export interface ThrowawayRedis {
  url: string;
  port: number;
  /** Stop it (SIGTERM) and wait for exit; `start()` brings it back on the same port, empty. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A redis-server of its own on a free port, keeping nothing on disk. */
export async function startRedis(): Promise<ThrowawayRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-'));
  const life = await serverLifecycle(
    async () => {
      const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitForOutput(child, /Ready to accept connections/, `redis-server on port ${port}`);
      return child;
    },
    'SIGTERM',
    dir,
  );
  return { url: `redis://127.0.0.1:${port}/0`, port, ...life };
}

export interface TestRedis {
  url: string;
  /** A key prefix of its own, so tests sharing one server never see each other's keys. */
  keyPrefix: string;
  close(): Promise<void>;
}

let redisServer: Promise<ThrowawayRedis> | undefined;

/** A Redis for one test: SWITCHYARD_TEST_REDIS_URL, or a throwaway server shared by this test file. */
export async function testRedis(): Promise<TestRedis> {
  const keyPrefix = `sytest:${randomBytes(6).toString('hex')}:`;
  const given = process.env.SWITCHYARD_TEST_REDIS_URL;
  if (given) return { url: given, keyPrefix, close: async () => {} };
  redisServer ??= startRedis();
  const server = await redisServer;
  return { url: server.url, keyPrefix, close: async () => {} };
}

/** Stop the file's throwaway Redis (call from afterAll). */
export async function stopTestRedis(): Promise<void> {
  const s = redisServer;
  redisServer = undefined;
  if (s) await (await s).close();
}

export interface ThrowawayPostgres {
  /** URL of the maintenance database `postgres` on this server. */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const runAsPostgres = process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: run its binaries as the `postgres` user then (signals still reach them directly). */
function asPostgres(): { uid?: number; gid?: number } {
  return runAsPostgres ? { uid: uidOf('postgres'), gid: gidOf('postgres') } : {};
}

/** An initdb'd cluster kept in the temp folder and copied per server: initdb runs once per machine, not per file. */
function templateCluster(bin: string): string {
  const template = join(tmpdir(), `switchyard-pg-template-${statSync(join(bin, 'initdb')).mtimeMs}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const building = mkdtempSync(join(tmpdir(), 'switchyard-pg-build-'));
  if (runAsPostgres) chownSync(building, uidOf('postgres'), gidOf('postgres'));
  const r = spawnSync(join(bin, 'initdb'), ['-D', building, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'], {
    encoding: 'utf8',
    cwd: building,
    ...asPostgres(),
  });
  if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.stdout}`);
  try {
    renameSync(building, template);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another file built it first
  }
  return template;
}

function uidOf(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}
function gidOf(user: string): number {
  return Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
}

/** A PostgreSQL server of its own on a free port, in a temp folder (fsync off: the tests kill gateways, not it). */
export async function startPostgres(): Promise<ThrowawayPostgres> {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)');
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'switchyard-pg-'));
  const data = join(root, 'data');
  cpSync(templateCluster(bin), data, { recursive: true });
  const sock = join(root, 'sock');
  mkdirSync(sock);
  if (runAsPostgres) {
    const uid = uidOf('postgres');
    const gid = gidOf('postgres');
    spawnSync('chown', ['-R', `${uid}:${gid}`, root]);
  }
  const life = await serverLifecycle(
    async () => {
      const args = ['-D', data, '-p', String(port), '-k', sock, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
      args.push('-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200');
      const child = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root, ...asPostgres() });
      await waitForOutput(child, /ready to accept connections/, `postgres on port ${port}`);
      return child;
    },
    'SIGINT', // fast shutdown
    root,
  );
  return { adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, port, ...life };
}

export interface TestPostgres {
  /** URL of a fresh, empty database of this test's own. */
  url: string;
  close(): Promise<void>;
}

let pgServer: Promise<ThrowawayPostgres> | undefined;

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A fresh database: on SWITCHYARD_TEST_PG_URL's server, or on a throwaway server shared by this test file. */
export async function testPostgres(): Promise<TestPostgres> {
  const { default: pg } = await import('pg');
  const adminUrl = process.env.SWITCHYARD_TEST_PG_URL ?? (await (pgServer ??= startPostgres())).adminUrl;
  const name = `sytest_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(adminUrl, name),
    close: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Stop the file's throwaway PostgreSQL (call from afterAll). */
export async function stopTestPostgres(): Promise<void> {
  const s = pgServer;
  pgServer = undefined;
  if (s) await (await s).close();
}

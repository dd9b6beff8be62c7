// Throwaway Redis and PostgreSQL servers for the replica bench, on free ports in temp folders (the tests have their
// own in test/helpers/shared-stores.ts; the bench runs plain Node and cannot import TypeScript). The initdb'd cluster
// is the one the tests keep in the temp folder, so initdb runs once per machine.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForLine } from './proc.mjs';

const REDIS_SERVER = process.env.SWITCHYARD_REDIS_SERVER ?? '/usr/bin/redis-server';

function pgBin() {
  if (process.env.SWITCHYARD_PG_BIN) return process.env.SWITCHYARD_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const v = readdirSync(root).filter((x) => existsSync(join(root, x, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))[0];
  return v ? join(root, v, 'bin') : undefined;
}

/** Why the replica bench cannot run here, or undefined. */
export function sharedServersMissing() {
  const missing = [];
  if (!existsSync(REDIS_SERVER)) missing.push(`redis-server (${REDIS_SERVER})`);
  if (!pgBin()) missing.push('PostgreSQL binaries (/usr/lib/postgresql/*/bin)');
  return missing.length ? `the replicas bench needs ${missing.join(' and ')}: apt-get install redis-server postgresql` : undefined;
}

const asRoot = process.getuid?.() === 0;
const idOf = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
const asPostgres = () => (asRoot ? { uid: idOf('-u'), gid: idOf('-g') } : {});

export async function startRedisServer() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-redis-'));
  const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(proc.stdout, /Ready to accept connections/, 'redis-server', proc, 20_000);
  proc.stdout.resume();
  return { url: `redis://127.0.0.1:${port}/0`, proc, close: () => (proc.kill('SIGTERM'), rmSync(dir, { recursive: true, force: true })) };
}

/** `settings`: more `-c name=value` server settings (the replicas budget loads pg_stat_statements with them). */
export async function startPostgresServer(settings = []) {
  const bin = pgBin();
  const template = join(tmpdir(), `switchyard-pg-template-${statSync(join(bin, 'initdb')).mtimeMs}`);
  if (!existsSync(join(template, 'PG_VERSION'))) {
    const building = mkdtempSync(join(tmpdir(), 'switchyard-pg-build-'));
    if (asRoot) spawnSync('chown', ['postgres:postgres', building]);
    const r = spawnSync(join(bin, 'initdb'), ['-D', building, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'], { encoding: 'utf8', cwd: building, ...asPostgres() });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.stdout}`);
    try {
      renameSync(building, template);
    } catch {
      rmSync(building, { recursive: true, force: true });
    }
  }
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'switchyard-bench-pg-'));
  cpSync(template, join(root, 'data'), { recursive: true });
  spawnSync('mkdir', [join(root, 'sock')]);
  if (asRoot) spawnSync('chown', ['-R', 'postgres:postgres', root]);
  const args = ['-D', join(root, 'data'), '-p', String(port), '-k', join(root, 'sock'), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', ...settings.flatMap((x) => ['-c', x])];
  // Durable settings as shipped: the bench measures what a deployment pays for strict commits, not a tuned-down server.
  const proc = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root, ...asPostgres() });
  await waitForLine(proc.stderr, /ready to accept connections/, 'postgres', proc, 30_000);
  proc.stdout.resume();
  proc.stderr.resume();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return { url, proc, close: () => (proc.kill('SIGINT'), setTimeout(() => rmSync(root, { recursive: true, force: true }), 500).unref()) };
}

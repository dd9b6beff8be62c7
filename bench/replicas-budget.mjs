// Where a call's CPU goes with replicas: µs of CPU per call for every process group (the gateways, redis-server, every
// postgres process, the upstream, this process = clients + balancers), one SQLite gateway behind the balancer against
// three replicas on Redis + PostgreSQL, under 16 concurrent 2026-07-28 clients ("new": each call starts a workflow;
// "wf": each client's calls join one). It runs bench/replicas.mjs's own harness (configuration, agent, clients,
// warm-up, measurement), so its calls/s are the replicas bench's, and measures its baseline as that bench does:
// after a measurement of its own gateway, not first after start nor straight after the three replicas' run. After
// each three-replica measurement it prints the PostgreSQL
// statements (pg_stat_statements) and Redis commands (INFO commandstats) per call. Compare two checkouts by running
// each one's copy alternately.
//   node bench/replicas-budget.mjs            (env SECS=5 ROUNDS=2 SESSIONS=16, PROF=dir profiles the first replica)
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startBalancer } from './balancer.mjs';
import { freePort } from './proc.mjs';
import { home, measure, serve, startUpstream } from './replicas.mjs';
import { sharedServersMissing, startPostgresServer, startRedisServer } from './shared-servers.mjs';

const SECS = Number(process.env.SECS || 5);
const ROUNDS = Number(process.env.ROUNDS || 2);
const SESSIONS = Number(process.env.SESSIONS || 16);
const missing = sharedServersMissing();
if (missing) {
  console.log(`replicas budget skipped: ${missing}`);
  process.exit(0);
}

const up = await startUpstream();
const redis = await startRedisServer();
const pgServer = await startPostgresServer(['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all']);
const oneDir = home(up.url, '');
const one = await serve(oneDir);
const lbPort = await freePort();
const sharedDir = home(up.url, `publicUrl: http://127.0.0.1:${lbPort}\nstate:\n  redis: ${redis.url}\nstore:\n  postgres: ${pgServer.url}\n`);
const three = [await serve(sharedDir, process.env.PROF), await serve(sharedDir), await serve(sharedDir)];
const lb1 = await startBalancer({ targets: [one.base] });
const lb3 = await startBalancer({ targets: three.map((t) => t.base), port: lbPort });

const stats = new pg.Client({ connectionString: pgServer.url });
await stats.connect();
await stats.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
const redisStats = new Redis(redis.url, { lazyConnect: false });

/** Every postgres process (the postmaster and its children: backends, walwriter, checkpointer, autovacuum). */
const pgPids = () => {
  const out = [pgServer.proc.pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pgServer.proc.pid) out.push(Number(d));
    } catch {}
  }
  return out;
};
const groupsOf = (gws) => ({ gateways: () => gws.map((g) => g.proc.pid), redis: () => [redis.proc.pid], pg: pgPids, upstream: () => [up.proc.pid], 'client+lb': () => [process.pid] });

async function resetStats() {
  await stats.query('SELECT pg_stat_statements_reset()');
  await redisStats.config('RESETSTAT');
}

/** Statements and commands per call since resetStats: what the shared stores were asked to do. */
async function printStats(calls) {
  const { rows } = await stats.query(
    `SELECT calls, total_exec_time, wal_records, regexp_replace(query, '\\s+', ' ', 'g') AS q FROM pg_stat_statements
     WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC LIMIT 12`,
  );
  const perK = (n) => ((Number(n) * 1000) / calls).toFixed(0).padStart(5);
  console.log(`    PostgreSQL statements per 1000 calls (exec ms per 1000 calls, WAL records per 1000 calls):`);
  for (const r of rows) console.log(`      ${perK(r.calls)}  (${((Number(r.total_exec_time) * 1000) / calls).toFixed(0).padStart(5)} ms, ${perK(r.wal_records)} wal)  ${r.q.slice(0, 110)}`);
  const info = await redisStats.info('commandstats');
  const cmds = [...info.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)].filter((m) => m[1] !== 'config' && m[1] !== 'info').sort((a, b) => Number(b[2]) - Number(a[2]));
  console.log(`    Redis commands per 1000 calls (µs inside Redis per call): ${cmds.map((m) => `${m[1]} ${perK(m[2])} (${(Number(m[3]) / calls).toFixed(0)})`).join(', ')}`);
}

const row = (name, wf, r) =>
  console.log(`${name.padEnd(10)} ${wf ? 'wf ' : 'new'} ${r.rps.toFixed(0).padStart(5)} calls/s  µs cpu/call: ${Object.entries(r.cpuByGroup).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('  ')}  all ${Object.values(r.cpuByGroup).reduce((s, v) => s + v, 0).toFixed(0)}${r.errors ? `  (${r.errors} errors)` : ''}`);

try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const wf of [false, true]) {
      // The baseline twice: the first run settles whatever the previous measurement left behind, the second is shown.
      await measure(`${lb1.url}/mcp`, [one.proc.pid], SESSIONS, Math.min(2, SECS), wf);
      row('one+lb', wf, await measure(`${lb1.url}/mcp`, [one.proc.pid], SESSIONS, SECS, wf, groupsOf([one])));
      await resetStats();
      const t = await measure(`${lb3.url}/mcp`, three.map((x) => x.proc.pid), SESSIONS, SECS, wf, groupsOf(three));
      row('three+lb', wf, t);
      // Warm-up calls (50 per client) ran after the reset too.
      await printStats(t.calls + 50 * SESSIONS);
    }
  }
} finally {
  await stats.end().catch(() => {});
  redisStats.disconnect();
  for (const p of [one, ...three]) p.proc.kill();
  up.proc.kill();
  await lb1.close();
  await lb3.close();
  await redis.close();
  pgServer.close();
  for (const d of [oneDir, sharedDir]) rmSync(d, { recursive: true, force: true });
}
process.exit(0);

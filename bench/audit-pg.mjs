#!/usr/bin/env node
// Audit append cost on PostgreSQL, per step: batched (record() on the response path, then the writer's transactions)
// and strict (record() resolved after COMMIT, with 1, 8 and 32 steps in flight), for one replica and for two writing
// to the same chain. Runs on a fresh database of SWITCHYARD_BENCH_PG_URL's server (default the local one), dropped after.
//
//   npx tsc -p tsconfig.json && node bench/audit-pg.mjs [--steps 20000] [--rate 10000] [--strict-steps 2000]
// Batched steps arrive at --rate per second in total (10 ms ticks), so flushes happen as in a gateway under that load.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { openPostgres } from '../dist/stores/postgres/pool.js';
import { PgAuditLog } from '../dist/stores/postgres/audit/store.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '20000' }, 'strict-steps': { type: 'string', default: '2000' }, rate: { type: 'string', default: '10000' } } });
const RATE = Number(values.rate);
const STEPS = Number(values.steps);
const STRICT_STEPS = Number(values['strict-steps']);
const admin = process.env.SWITCHYARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `switchyard_bench_${randomBytes(4).toString('hex')}`;
const silent = pino({ level: 'silent' });
const key = randomBytes(32);

async function sql(text) {
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

const url = (() => {
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
})();

const step = (workflowId, stepNo) => ({
  kind: 'tools/call',
  caller: { agentId: 'agent-a', user: 'alice@example.com', chain: ['agent-a'], via: 'apikey' },
  workflowId,
  stepNo,
  server: 'github',
  target: 'search_issues',
  exposedName: 'github__search_issues',
  args: { q: `is:open label:bug step ${stepNo}`, per_page: 20, token: 'secret' },
  startedAt: Date.now(),
});
const outcome = { outcome: 'ok', durationMs: 3.2, bytes: 1800 };
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
const us = (ms) => `${(ms * 1000).toFixed(1)} µs`;

async function replica(id, durability) {
  const db = await openPostgres({ url, log: silent });
  const log = await PgAuditLog.open(db, { hmacKey: key, durability, replica: id, flushMs: 100 });
  return { db, log, close: async () => (await log.close(), await db.close()) };
}

async function batched(replicas, rate = RATE) {
  const rs = await Promise.all(Array.from({ length: replicas }, (_, i) => replica(`r${i}`, 'batched')));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let onPath = 0;
  const perTick = Math.max(1, Math.round(rate / 100 / replicas));
  for (let i = 0; i < STEPS; i += perTick * replicas) {
    const due = t0 + (i / rate) * 1000;
    if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
    for (const [n, r] of rs.entries()) {
      const a = performance.now();
      for (let j = 0; j < perTick; j++) r.log.record(step(`wf-${n}`, i + j + 1), outcome);
      onPath += performance.now() - a;
    }
  }
  await Promise.all(rs.map((r) => r.log.flush()));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const flushes = rs.reduce((n, r) => n + r.log.getStats().flushes, 0);
  const written = rs.reduce((n, r) => n + r.log.getStats().written, 0);
  await Promise.all(rs.map((r) => r.close()));
  return { mode: `batched, ${replicas} replica(s), ${rate}/s`, steps: written, flushes, recordOnPath: us(onPath / written), cpuPerStep: us((cpu.user + cpu.system) / 1000 / written), stepsPerSec: Math.round(written / (wall / 1000)) };
}

async function strict(replicas, inFlight) {
  const rs = await Promise.all(Array.from({ length: replicas }, (_, i) => replica(`s${i}`, 'strict')));
  const latencies = [];
  const perLane = Math.ceil(STRICT_STEPS / (replicas * inFlight));
  const t0 = performance.now();
  await Promise.all(
    rs.flatMap((r, n) =>
      Array.from({ length: inFlight }, async (_, lane) => {
        for (let i = 1; i <= perLane; i++) {
          const a = performance.now();
          await r.log.record(step(`strict-${n}-${lane}`, i), outcome);
          latencies.push(performance.now() - a);
        }
      }),
    ),
  );
  const wall = performance.now() - t0;
  const flushes = rs.reduce((n, r) => n + r.log.getStats().flushes, 0);
  await Promise.all(rs.map((r) => r.close()));
  latencies.sort((a, b) => a - b);
  const ms = (v) => `${v.toFixed(2)} ms`;
  return { mode: `strict, ${replicas} replica(s), ${inFlight} in flight each`, steps: latencies.length, flushes, p50: ms(pct(latencies, 50)), p99: ms(pct(latencies, 99)), wallPerStep: us(wall / latencies.length), stepsPerSec: Math.round(latencies.length / (wall / 1000)) };
}

await sql(`CREATE DATABASE ${name}`);
try {
  const settings = await sql("SELECT current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fsync");
  console.log(`PostgreSQL ${admin.replace(/\/\/[^@]*@/, '//')} synchronous_commit=${settings.rows[0].sc} fsync=${settings.rows[0].fsync}`);
  const results = [];
  results.push(await batched(1));
  results.push(await batched(2));
  // As fast as one process can queue them: the writer's ceiling.
  results.push(await batched(1, 1_000_000));
  for (const inFlight of [1, 8, 32]) results.push(await strict(1, inFlight));
  results.push(await strict(2, 8));
  console.table(results);
  const db = await openPostgres({ url, log: silent, migrate: false });
  const log = await PgAuditLog.open(db, { hmacKey: key });
  const t = performance.now();
  const verdict = await log.verify();
  console.log(`verify: ${JSON.stringify(verdict)} in ${(performance.now() - t).toFixed(0)} ms`);
  await log.close();
  await db.close();
} finally {
  await sql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

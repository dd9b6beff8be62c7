// What replicas cost while nobody calls them (`node bench/replicas-idle.mjs [--seconds 20] [--replicas 3]`): one
// gateway on its SQLite data dir, then N gateways sharing a throwaway Redis and PostgreSQL, each left idle after a
// few calls; prints CPU per second of every gateway process, of PostgreSQL (postmaster and backends) and of Redis,
// read from /proc over the same idle seconds.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cpuSeconds } from './proc.mjs';
import { client, home, serve, startBackends } from './replicas.mjs';
import { sharedServersMissing } from './shared-servers.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, replicas: { type: 'string', default: '3' }, warmup: { type: 'string', default: '10' } } });
const seconds = Number(values.seconds);

/** The process and its descendants (PostgreSQL's backends are children of the postmaster). */
function tree(pid) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (kids.get(ppid) ?? kids.set(ppid, []).get(ppid)).push(Number(d));
    } catch {}
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(kids.get(out[i]) ?? []));
  return out;
}
const cpuOf = (pids) => pids.reduce((s, p) => { try { return s + cpuSeconds(p); } catch { return s; } }, 0);
/** CPU seconds per pid; a pid gone since (an idle PostgreSQL backend that timed out) counts what it had. */
const cpuMap = (pids) => new Map(pids.flatMap((p) => { try { return [[p, cpuSeconds(p)]]; } catch { return []; } }));

const missing = sharedServersMissing();
if (missing) {
  console.log(`replicas idle bench skipped: ${missing}`);
  process.exit(0);
}
const cleanup = [];
try {
  const { upstream, redis, pg } = await startBackends(cleanup);
  const oneDir = home(upstream.url, '');
  cleanup.push(() => rmSync(oneDir, { recursive: true, force: true }));
  const sharedDir = home(upstream.url, `state:\n  redis: ${redis.url}\nstore:\n  postgres: ${pg.url}\n`);
  cleanup.push(() => rmSync(sharedDir, { recursive: true, force: true }));
  const one = await serve(oneDir);
  cleanup.push(() => one.proc.kill());
  const shared = [];
  for (let i = 0; i < Number(values.replicas); i++) {
    const r = await serve(sharedDir);
    cleanup.push(() => r.proc.kill());
    shared.push(r);
  }
  // A few calls on each, so every lazy connection and timer is up, then idle.
  for (const g of [one, ...shared]) for (let i = 0; i < 20; i++) await client(`${g.base}/mcp`)();
  await new Promise((r) => setTimeout(r, Number(values.warmup) * 1000));
  const groups = { 'one sqlite': [one.proc.pid], ...Object.fromEntries(shared.map((r, i) => [`shared replica ${i + 1}`, [r.proc.pid]])), postgres: tree(pg.proc.pid), redis: [redis.proc.pid] };
  const before = Object.fromEntries(Object.entries(groups).map(([k, p]) => [k, cpuOf(p)]));
  const pgBefore = cpuMap(tree(pg.proc.pid));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  console.log(`switchyard bench replicas idle: ${seconds} s idle, ${shared.length} replicas on Redis + PostgreSQL, Node ${process.version}`);
  let sum = 0;
  for (const [k, p] of Object.entries(groups)) {
    let used = cpuOf(p) - before[k];
    if (k === 'postgres') {
      const after = cpuMap(tree(pg.proc.pid));
      used = [...after].reduce((s, [pid, c]) => s + c - (pgBefore.get(pid) ?? 0), 0);
    }
    const msPerS = (used * 1000) / elapsed;
    if (k.startsWith('shared')) sum += msPerS;
    console.log(`  ${k.padEnd(18)} ${msPerS.toFixed(2).padStart(7)} ms cpu/s`);
  }
  console.log(`  ${'all replicas'.padEnd(18)} ${sum.toFixed(2).padStart(7)} ms cpu/s`);
} finally {
  for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
}

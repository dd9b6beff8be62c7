// Where a call's CPU goes with replicas: µs of CPU per call for every process group (the gateways, redis-server, every
// postgres process, the upstream, this process = clients + balancer), one SQLite gateway behind the balancer against
// three replicas on Redis + PostgreSQL, under 16 concurrent 2026-07-28 clients ("new": each call starts a workflow;
// "wf": each client's calls join one). Compare two checkouts by running each one's copy alternately.
//   node bench/replicas-budget.mjs            (env SECS=5 ROUNDS=2, PROF=dir profiles the first replica)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBalancer } from './balancer.mjs';
import { cpuSeconds, freePort, waitForLine } from './proc.mjs';
import { startPostgresServer, startRedisServer } from './shared-servers.mjs';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' } };
const AGENT = 'id: local\ntools: { allow: ["*"] }\nlimits:\n  workflow: { toolCalls: 100000000 }\n  perMinute: { toolCalls: 100000000 }\n  perDay: { toolCalls: 100000000 }\n';
const up = spawn(process.execPath, [join(ROOT, 'test/fixtures/feature-server.mjs'), '--http', '--port', '0', '--name', 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
const upUrl = (await waitForLine(up.stdout, /listening (http:\/\/\S+)/, 'up', up))[1]; up.stdout.resume();
const redis = await startRedisServer(); const pg = await startPostgresServer();
function home(y) { const d = mkdtempSync(join(tmpdir(), 'probe-')); for (const x of ['servers.d','agents.d','data']) mkdirSync(join(d,x)); writeFileSync(join(d,'servers.d','bench.yaml'), `name: bench\ntransport: http\nurl: ${upUrl}\n`); writeFileSync(join(d,'agents.d','local.yaml'), AGENT); writeFileSync(join(d,'gateway.yaml'), y||'{}\n'); return d; }
async function serve(dir, extra = []) { const port = await freePort(); const proc = spawn(process.execPath, [...extra, join(ROOT,'bin/switchyard.js'),'serve','--port',String(port),'--config',join(dir,'gateway.yaml'),'--servers',join(dir,'servers.d'),'--agents',join(dir,'agents.d'),'--data',join(dir,'data')], { stdio: ['ignore','ignore','inherit'], env: { ...process.env, LOG_LEVEL: 'warn' }, cwd: ROOT });
  const base = `http://127.0.0.1:${port}`; for (;;) { if (await fetch(base + '/readyz').then(r => r.ok, () => false)) break; await new Promise(r => setTimeout(r, 100)); } return { base, proc }; }
const lbPort = await freePort();
const shared = home(`publicUrl: http://127.0.0.1:${lbPort}\nstate:\n  redis: ${redis.url}\nstore:\n  postgres: ${pg.url}\n`);
const one = await serve(home(''));
const prof = process.env.PROF ? ['--cpu-prof', '--cpu-prof-interval', '200', '--cpu-prof-dir', process.env.PROF] : [];
const three = [await serve(shared, prof), await serve(shared), await serve(shared)];
const lb1 = await startBalancer({ targets: [one.base] }); const lb3 = await startBalancer({ targets: three.map(t => t.base), port: lbPort });
const pgPids = () => { const out = [pg.proc.pid]; for (const d of readdirSync('/proc')) { if (!/^\d+$/.test(d)) continue; try { const s = readFileSync(`/proc/${d}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); if (Number(f[1]) === pg.proc.pid) out.push(Number(d)); } catch {} } return out; };
const cpu = (pids) => pids.reduce((s, p) => { try { return s + cpuSeconds(p); } catch { return s; } }, 0);
let seq = 0;
const call = (url, wf) => async () => { const res = await fetch(url + '/mcp', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'bench__add', ...(wf ? { 'x-workflow-id': wf } : {}) }, body: JSON.stringify({ jsonrpc: '2.0', id: ++seq, method: 'tools/call', params: { name: 'bench__add', arguments: { a: 2, b: 3 }, _meta: META } }) }); const t = await res.text(); if (t.includes('"error"')) throw new Error(t); };
async function measure(name, url, gws, wf) {
  const cs = Array.from({ length: 16 }, (_, i) => call(url, wf ? `wf-${name}-${i}-${Math.random()}` : undefined));
  await Promise.all(cs.map(async c => { for (let i = 0; i < 30; i++) await c(); }));
  const groups = { gateways: gws.map(g => g.proc.pid), redis: [redis.proc.pid], pg: pgPids(), upstream: [up.pid], 'client+lb': [process.pid] };
  const c0 = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, cpu(v)]));
  let n = 0; const t0 = performance.now(); const end = t0 + Number(process.env.SECS || 5) * 1000;
  await Promise.all(cs.map(async c => { while (performance.now() < end) { await c(); n++; } }));
  const el = (performance.now() - t0) / 1000;
  const parts = Object.entries(groups).map(([k, v]) => `${k} ${((cpu(v) - c0[k]) * 1e6 / n).toFixed(0)}`);
  console.log(`${name.padEnd(10)} ${wf ? 'wf ' : 'new'} ${(n / el).toFixed(0).padStart(5)} calls/s  µs cpu/call: ${parts.join('  ')}`);
}
for (let r = 0; r < Number(process.env.ROUNDS || 2); r++) for (const wf of [false, true]) { await measure('one+lb', lb1.url, [one], wf); await measure('three+lb', lb3.url, three, wf); }
for (const p of [one, ...three]) p.proc.kill(); up.kill(); await lb1.close(); await lb3.close(); await redis.close(); await pg.close(); process.exit(0);

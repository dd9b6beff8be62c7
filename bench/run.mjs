#!/usr/bin/env node
// Throughput benchmark: N concurrent MCP client sessions call a tool back to back, directly against an upstream
// MCP server and through the gateway, in one run on one machine. Prints calls/s, p50/p99 and the ratio.
//
//   npm run bench -- [--sessions 16] [--seconds 5] [--rounds 2] [--variants gateway,gateway-audit-off] [--against DIR] [--profile DIR] [--heap-profile DIR] [--threads]
//                    (--heap-profile: bench/heap-sampler.mjs; SWITCHYARD_HEAP_PROFILE_KEEP=promoted keeps only what survived scavenges)
//   npm run bench -- --list | --memory      (bench/lists.mjs, bench/memory.mjs: their own options)
//
// Variants (each is a gateway configuration measured against the same upstream):
//   gateway            defaults (local mode, audit batched when the data dir is set)
//   gateway-audit-off  audit disabled
//   gateway-secured    JWT auth + a 50-rule policy + limits, for the identity/policy/limits overhead
//   pipe               a blind TCP byte pipe (bench/pipe.mjs): the floor for a proxy's CPU per call
//   pipe-http          a blind HTTP reverse proxy (bench/pipe-http.mjs): Node's HTTP server and an undici pool, bodies as bytes
//   gateway-2026       defaults, measured with 2026-07-28 clients (stateless POSTs with the _meta envelope)
//   console            first-load times of the console's admin API queries on a seeded trail (bench/console.mjs)
//   model              the model route instead (bench/model.mjs): chat completions direct vs through the gateway
//   replicas           one gateway on SQLite vs three on a throwaway Redis + PostgreSQL behind a round-robin
//                      balancer (bench/replicas.mjs), and the cost of one budget reservation in Redis
//
// "cpu/call" is the CPU time (user + system, from /proc/<pid>/stat) the measured process spent during the
// measurement divided by the calls made: the upstream for direct, the pipe or gateway process otherwise. It is
// far steadier than calls/s on a shared machine. "main thread" is the event loop's share of it (the audit writer
// thread's work is in cpu/call but not there).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, freePort, ROOT, threadSeconds, waitForLine } from './proc.mjs';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { variants as variantDefs } from './variants.mjs';

// `--list` runs the list benchmark (bench/lists.mjs), `--memory` memory per idle session (bench/memory.mjs).
if (process.argv.includes('--list') || process.argv.includes('--memory')) {
  await import(process.argv.includes('--list') ? './lists.mjs' : './memory.mjs');
  process.exit(0);
}
const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    variants: { type: 'string', default: 'gateway' },
    // console variant: steps in the seeded trail.
    steps: { type: 'string', default: '1000000' },
    // Write a V8 CPU profile of each gateway and pipe process into this folder (open it in Chrome DevTools).
    profile: { type: 'string' },
    // Write a sampled allocation profile of each measured process into this folder (bench/heap-sampler.mjs).
    'heap-profile': { type: 'string' },
    // Another checkout (built) to measure beside this one: each gateway variant V also runs from there as V@against,
    // in the same rounds, so host noise hits both builds alike.
    against: { type: 'string' },
    // Print each measured process's CPU per call by thread: the event loop ("main") and the others by their names.
    threads: { type: 'boolean', default: false },
  },
});
// The model route has its own benchmark: direct to a fake provider vs through the gateway (bench/model.mjs).
if (values.variants.split(',').includes('model')) {
  const { runModelBench } = await import('./model.mjs');
  await runModelBench({ clients: Number(values.sessions), seconds: Number(values.seconds), rounds: Number(values.rounds), profile: values.profile });
  process.exit(0);
}
// Replicas have their own benchmark: one gateway on SQLite vs three sharing Redis and PostgreSQL (bench/replicas.mjs).
if (values.variants.split(',').includes('replicas')) {
  const { runReplicasBench } = await import('./replicas.mjs');
  await runReplicasBench({ sessions: Number(values.sessions), seconds: Number(values.seconds), rounds: Number(values.rounds), profile: values.profile });
  process.exit(0);
}
const SESSIONS = Number(values.sessions);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const VARIANTS = values.variants.split(',').filter(Boolean);
if (values.against) {
  for (const name of [...VARIANTS]) if (variantDefs[name] && !variantDefs[name].pipe) VARIANTS.splice(VARIANTS.indexOf(name) + 1, 0, `${name}@against`);
}
/** A variant's definition and the checkout it runs from (`name@against` is `name` from --against). */
function variantOf(name) {
  const [base, from] = name.split('@');
  return { def: variantDefs[base], root: from === 'against' ? values.against : ROOT };
}

async function startUpstream() {
  const proc = spawn(process.execPath, [join(ROOT, 'test/fixtures/feature-server.mjs'), '--http', '--port', '0', '--name', 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const m = await waitForLine(proc.stdout, /listening (http:\/\/\S+)/, 'upstream', proc, 20_000);
  return { url: m[1], proc };
}

async function startGateway(upstreamUrl, variant, root = ROOT) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  mkdirSync(join(dir, 'servers.d'));
  mkdirSync(join(dir, 'agents.d'));
  writeFileSync(join(dir, 'servers.d', 'bench.yaml'), `name: bench\ntransport: http\nurl: ${upstreamUrl}\n`);
  const setup = await variant.setup(dir);
  writeFileSync(join(dir, 'gateway.yaml'), setup.gatewayYaml ?? '');
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      ...(values.profile ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', values.profile] : []),
      ...(values['heap-profile'] ? ['--import', join(ROOT, 'bench/heap-sampler.mjs')] : []),
      join(root, 'bin/switchyard.js'), 'serve', '--port', String(port), '--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...(values['heap-profile'] ? { SWITCHYARD_HEAP_PROFILE_DIR: values['heap-profile'] } : {}) },
      cwd: ROOT,
    },
  );
  // Per-step info lines are part of the product but not of this measurement: run at warn and poll /healthz.
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}`);
    const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error('gateway did not start in 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `${base}/mcp`, proc, dir, headers: setup.headers ?? {} };
}

async function startPipe(upstreamUrl, script) {
  const port = new URL(upstreamUrl).port;
  const proc = spawn(process.execPath, [
    ...(values.profile ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', values.profile] : []),
    ...(values['heap-profile'] ? ['--import', join(ROOT, 'bench/heap-sampler.mjs')] : []),
    join(ROOT, 'bench', script), port], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...(values['heap-profile'] ? { SWITCHYARD_HEAP_PROFILE_DIR: values['heap-profile'] } : {}) },
  });
  const m = await waitForLine(proc.stdout, /listening (\d+)/, 'pipe', proc, 20_000);
  return { url: `http://127.0.0.1:${m[1]}/mcp`, proc, tool: 'add', headers: {} };
}

async function connect(url, headers) {
  const client = new Client({ name: 'bench', version: '1' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

/** End the session as a well-behaved client does (DELETE), so rounds do not pile up sessions on the server. */
async function disconnect(client) {
  await client.transport?.terminateSession?.().catch(() => {});
  await client.close().catch(() => {});
}

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
};

/** A 2026-07-28 client: no session, each call one POST carrying the revision's headers and _meta. */
function modernClient(url, headers) {
  let seq = 0;
  return {
    async request({ method, params }) {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': method,
          'mcp-name': params.name,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: ++seq, method, params: { ...params, _meta: MODERN_META } }),
      });
      const text = await res.text();
      const data = res.headers.get('content-type')?.includes('text/event-stream') ? text.split('\n').filter((l) => l.startsWith('data: ')).pop().slice(6) : text;
      const msg = JSON.parse(data);
      if (msg.error) throw new Error(msg.error.message);
      return msg.result;
    },
  };
}

async function measure(url, toolName, headers = {}, pid = undefined, modern = false) {
  const clients = await Promise.all(Array.from({ length: SESSIONS }, () => (modern ? modernClient(url, headers) : connect(url, headers))));
  const call = (c) => c.request({ method: 'tools/call', params: { name: toolName, arguments: { a: 2, b: 3 } } }, CallToolResultSchema);
  // Warm-up: connections, JIT, upstream sessions.
  await Promise.all(clients.map(async (c) => { for (let i = 0; i < 50; i++) await call(c); }));
  const latencies = [];
  let errors = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const cpu0 = pid === undefined ? undefined : cpuSeconds(pid);
  const main0 = pid === undefined ? undefined : cpuSeconds(pid, true);
  const threads0 = pid === undefined || !values.threads ? undefined : threadSeconds(pid);
  // The heap sampler (bench/heap-sampler.mjs) starts at its first SIGUSR2, so the warm-up is left out.
  if (values['heap-profile'] && pid !== undefined && pid !== upstream.proc.pid) process.kill(pid, 'SIGUSR2');
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const r = await call(c).catch(() => null);
        if (!r || r.isError) errors++;
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu1 = pid === undefined ? undefined : cpuSeconds(pid);
  const main1 = pid === undefined ? undefined : cpuSeconds(pid, true);
  const threads1 = threads0 === undefined ? undefined : threadSeconds(pid);
  if (!modern) await Promise.all(clients.map(disconnect));
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  const cpuUs = cpu0 === undefined || cpu1 === undefined ? NaN : ((cpu1 - cpu0) * 1e6) / latencies.length;
  const mainUs = main0 === undefined || main1 === undefined ? NaN : ((main1 - main0) * 1e6) / latencies.length;
  const threads =
    threads1 === undefined
      ? undefined
      : Object.entries(threads1)
          .map(([k, v]) => [k, ((v - (threads0[k] ?? 0)) * 1e6) / latencies.length])
          .filter(([, us]) => us >= 1)
          .sort((a, b) => b[1] - a[1]);
  return { calls: latencies.length, errors, rps: latencies.length / elapsed, p50: pct(50), p99: pct(99), cpuUs, mainUs, threads };
}

const cpuText = (us) => (Number.isFinite(us) ? `${us.toFixed(0).padStart(5)} µs cpu/call` : '    - cpu/call');
const mainText = (us) => (Number.isFinite(us) ? ` (main thread ${us.toFixed(0)})` : '');
const threadText = (r) => (r.threads ? `\n           by thread: ${r.threads.map(([k, us]) => `${k} ${us.toFixed(0)}`).join(', ')} µs/call` : '');
const fmt = (r) => `${r.rps.toFixed(0).padStart(7)} calls/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   ${cpuText(r.cpuUs)}${mainText(r.mainUs)}   (${r.calls} calls, ${r.errors} errors)${threadText(r)}`;

// The console variant measures admin API queries on a seeded trail, not call throughput.
if (VARIANTS.includes('console')) {
  const { runConsoleBench } = await import('./console.mjs');
  await runConsoleBench({ steps: Number(values.steps) });
  VARIANTS.splice(VARIANTS.indexOf('console'), 1);
  if (VARIANTS.length === 0) process.exit(0);
}

const upstream = await startUpstream();
const results = { direct: [] };
const gateways = {};
try {
  for (const name of VARIANTS) {
    const { def: v, root } = variantOf(name);
    if (!v) throw new Error(`unknown variant '${name}'; known: ${Object.keys(variantDefs).join(', ')}`);
    gateways[name] = v.pipe ? await startPipe(upstream.url, v.pipe) : { ...(await startGateway(upstream.url, v, root)), tool: 'bench__add' };
    results[name] = [];
  }
  console.log(`switchyard bench: ${SESSIONS} sessions, ${SECONDS} s per measurement, ${ROUNDS} rounds, tool add, Node ${process.version}`);
  // Interleave direct and gateway measurements so machine noise hits both alike. Even rounds take the variants in
  // reverse order (A B, then B A): a host that speeds up or slows down during a round would otherwise favour
  // whichever variant always comes last.
  for (let round = 1; round <= ROUNDS; round++) {
    const d = await measure(upstream.url, 'add', {}, upstream.proc.pid);
    results.direct.push(d);
    console.log(`round ${round}  direct                   ${fmt(d)}`);
    for (const name of round % 2 === 1 ? VARIANTS : [...VARIANTS].reverse()) {
      const g = await measure(gateways[name].url, gateways[name].tool, gateways[name].headers, gateways[name].proc.pid, variantOf(name).def.modern === true);
      results[name].push(g);
      console.log(`round ${round}  ${name.padEnd(24)} ${fmt(g)}`);
    }
  }
  const mean = (rs, k) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
  const direct = mean(results.direct, 'rps');
  console.log('\nsummary (mean over rounds)');
  console.log(`  direct                    ${direct.toFixed(0)} calls/s  p50 ${mean(results.direct, 'p50').toFixed(2)} ms  p99 ${mean(results.direct, 'p99').toFixed(2)} ms  upstream ${cpuText(mean(results.direct, 'cpuUs'))}`);
  const pipeCpu = results.pipe ? mean(results.pipe, 'cpuUs') : NaN;
  const httpPipeCpu = results['pipe-http'] ? mean(results['pipe-http'], 'cpuUs') : NaN;
  for (const name of VARIANTS) {
    const g = mean(results[name], 'rps');
    const cpu = mean(results[name], 'cpuUs');
    const isPipe = variantOf(name).def.pipe !== undefined;
    const vsPipe =
      (Number.isFinite(pipeCpu) && name !== 'pipe' ? `  ${(cpu / pipeCpu).toFixed(2)}x pipe cpu` : '') +
      (Number.isFinite(httpPipeCpu) && !isPipe ? `  ${(cpu / httpPipeCpu).toFixed(2)}x http pipe cpu` : '');
    console.log(`  ${name.padEnd(25)} ${g.toFixed(0)} calls/s  p50 ${mean(results[name], 'p50').toFixed(2)} ms  p99 ${mean(results[name], 'p99').toFixed(2)} ms  ratio ${(g / direct).toFixed(3)}x direct  ${cpuText(cpu)}${mainText(mean(results[name], 'mainUs'))}${vsPipe}`);
  }
} finally {
  upstream.proc.kill();
  for (const g of Object.values(gateways)) {
    // A profiled process writes its profile on the way out: wait for that, unless it has already gone.
    const running = g.proc.exitCode === null && g.proc.signalCode === null;
    g.proc.kill();
    if (running && (values.profile || values['heap-profile'])) await new Promise((r) => g.proc.once('exit', r));
    if (g.dir) rmSync(g.dir, { recursive: true, force: true });
  }
}

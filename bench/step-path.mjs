#!/usr/bin/env node
// The gateway's own work per tools/call, without HTTP on either side: authentication of a cached bearer, dispatch,
// routing, the guard chain (50-rule policy, limits, loop), numbering and the sinks (audit batched, metrics, step log),
// in one process, against an upstream session whose transport answers in memory. What bench/run.mjs measures minus
// the sockets, so a change to the guards, the pipeline or identity shows above the noise of a shared machine.
//
//   node bench/step-path.mjs [--calls 20000] [--concurrency 8] [--rounds 3] [--plain] [--audit-off] [--root DIR]
//                            [--profile DIR | --heap-profile DIR]
//
// Prints CPU per call of the main thread (from /proc/self/task/<pid>/stat, 10 ms ticks) and of the whole process
// (process.cpuUsage, the audit writer thread included), the wall time of GC pauses per call (a hint: on a loaded
// machine it holds time the thread waited for a core) and the main thread's scavenges and mark-compacts per 1,000 calls.
// Build first (it runs dist/).
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Session } from 'node:inspector/promises';
import pino from 'pino';
import { cpuSeconds, ROOT, threadSeconds, watchGc } from './proc.mjs';
import { variants } from './variants.mjs';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    profile: { type: 'string' },
    // Another checkout's build to measure (e.g. the starting commit's), with this script.
    root: { type: 'string' },
    // Sample allocations instead (collected ones included): where the garbage of a call is made. Sum the profile
    // with bench/heap-summary.mjs.
    'heap-profile': { type: 'string' },
    // The default gateway configuration (local mode, no policy, no limits) instead of the secured one.
    plain: { type: 'boolean', default: false },
    // No audit trail: the writer thread's backlog wait then never shows in a profile of the main thread.
    'audit-off': { type: 'boolean', default: false },
  },
});
const CALLS = Number(values.calls);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);

const BUILD = values.root ?? ROOT;
const { createCore } = await import(join(BUILD, 'dist/app.js'));
const { UpstreamSession } = await import(join(BUILD, 'dist/upstream/session.js'));
const { dispatch } = await import(join(BUILD, 'dist/gateway/dispatch.js'));

/** An upstream in memory: answers initialize, tools/list and tools/call on the next turn of the event loop, as I/O would. */
class MemoryUpstream {
  async start() {}
  async send(message) {
    if (message.id === undefined) return;
    const answer = (result) => setImmediate(() => this.onmessage?.({ jsonrpc: '2.0', id: message.id, result }, message.id, 80));
    switch (message.method) {
      case 'initialize':
        return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'bench', version: '1' } });
      case 'tools/list':
        return answer({ tools: [{ name: 'add', description: 'a + b', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } } }] });
      case 'tools/call': {
        const { a, b } = message.params.arguments;
        return answer({ content: [{ type: 'text', text: String(a + b) }] });
      }
      default:
        return answer({});
    }
  }
  async close() {
    this.onclose?.();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'switchyard-step-path-'));
mkdirSync(join(dir, 'servers.d'));
mkdirSync(join(dir, 'agents.d'));
// Nothing listens there: the pool's sessions are replaced by in-memory ones below.
writeFileSync(join(dir, 'servers.d', 'bench.yaml'), 'name: bench\ntransport: http\nurl: http://127.0.0.1:9/mcp\n');
const setup = values.plain ? { gatewayYaml: '' } : await variants['gateway-secured'].setup(dir);
writeFileSync(join(dir, 'gateway.yaml'), `${setup.gatewayYaml ?? ''}${values['audit-off'] ? 'audit:\n  enabled: false\n' : ''}`);

const core = await createCore({
  configPath: join(dir, 'gateway.yaml'),
  overrides: { serversDir: join(dir, 'servers.d'), agentsDir: join(dir, 'agents.d'), dataDir: join(dir, 'data') },
  logger: pino({ level: 'warn' }),
});
const gw = core.gateway;
const pool = gw.pools.get('bench');
const upstreams = new Map();
pool.peek = (clientKey) => upstreams.get(clientKey);

const authorization = setup.headers?.authorization;
const authenticate = () => core.authenticator.authenticate({ authorization, remoteAddress: '127.0.0.1' });

async function openSession() {
  let auth = authenticate();
  if (auth instanceof Promise) auth = await auth;
  if (!auth.ok) throw new Error(`authentication failed: ${auth.message}`);
  const { session } = await gw.initialize({ protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } }, auth.caller, {});
  const up = new UpstreamSession(pool.manifest, new MemoryUpstream(), session.init, { onNotification() {}, onClose() {} }, pino({ level: 'silent' }));
  await up.connect();
  upstreams.set(session.id, up);
  return session;
}

const sessions = await Promise.all(Array.from({ length: CONCURRENCY }, openSession));

/** One tools/call as the HTTP adapter hands it over: authenticate, find the session, dispatch, wait for the answer. */
async function call(cs, id) {
  let auth = authenticate();
  if (auth instanceof Promise) auth = await auth;
  if (!auth.ok || auth.caller.principal !== cs.caller.principal) throw new Error('authentication failed');
  const msg = JSON.parse(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"bench__add","arguments":{"a":2,"b":3}}}`);
  let answer;
  const reply = { gone: false, related() {}, final: (m) => void (answer = m) };
  await dispatch(gw, cs, msg, reply);
  if (!answer || answer.error || answer.result?.isError) throw new Error(`call failed: ${JSON.stringify(answer)}`);
}

async function run(n) {
  let next = 0;
  await Promise.all(
    sessions.map(async (cs) => {
      while (next < n) await call(cs, ++next);
    }),
  );
}

// Main thread only: minor = scavenges, major = mark-compacts.
const gc = watchGc();

let profiler;
if (values.profile || values['heap-profile']) {
  profiler = new Session();
  profiler.connect();
  if (values.profile) {
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
  } else await profiler.post('HeapProfiler.enable');
}

await run(Math.min(5000, CALLS)); // warm-up: JIT, caches, the audit writer
console.log(`step-path: ${values.plain ? 'gateway (defaults)' : 'gateway-secured'}${values['audit-off'] ? ', audit off' : ''} in process, ${CALLS} calls per round, ${CONCURRENCY} sessions, ${BUILD}, Node ${process.version}`);
if (values.profile) await profiler.post('Profiler.start');
if (values['heap-profile']) {
  // SWITCHYARD_HEAP_PROFILE_KEEP=promoted keeps only what no minor GC freed (as bench/heap-sampler.mjs does).
  const keep = process.env.SWITCHYARD_HEAP_PROFILE_KEEP ?? 'all';
  await profiler.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: keep !== 'live', includeObjectsCollectedByMinorGC: keep === 'all' });
}
const rows = [];
for (let round = 1; round <= ROUNDS; round++) {
  const main0 = cpuSeconds(process.pid, true);
  const cpu0 = process.cpuUsage();
  const { ms: gc0, minor: minor0, major: major0 } = gc;
  const t0 = performance.now();
  await run(CALLS);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const row = {
    main: ((cpuSeconds(process.pid, true) - main0) * 1e6) / CALLS,
    process: (cpu.user + cpu.system) / CALLS,
    gc: ((gc.ms - gc0) * 1000) / CALLS,
    wallUs: (wall * 1000) / CALLS,
    scavenges: ((gc.minor - minor0) * 1000) / CALLS,
    markCompacts: ((gc.major - major0) * 1000) / CALLS,
  };
  rows.push(row);
  console.log(`round ${round}  main thread ${row.main.toFixed(1).padStart(6)} µs/call   process ${row.process.toFixed(1).padStart(6)} µs/call   gc wall ${row.gc.toFixed(1).padStart(5)} µs/call   wall ${row.wallUs.toFixed(1)} µs/call   per 1,000 calls: ${row.scavenges.toFixed(2)} scavenges, ${row.markCompacts.toFixed(2)} mark-compacts`);
}
if (profiler) {
  const out = values.profile ?? values['heap-profile'];
  const { profile } = await profiler.post(values.profile ? 'Profiler.stop' : 'HeapProfiler.stopSampling');
  mkdirSync(out, { recursive: true });
  const file = join(out, `step-path-${Date.now()}.${values.profile ? 'cpuprofile' : 'heapprofile'}`);
  writeFileSync(file, JSON.stringify(profile));
  console.log(`profile: ${file}`);
}
if (process.env.THREADS) {
  for (const [name, seconds] of Object.entries(threadSeconds(process.pid))) console.log(name, seconds, 's');
}
gc.stop();
const sorted = (k) => rows.map((r) => r[k]).sort((a, b) => a - b);
const median = (k) => sorted(k)[Math.floor(rows.length / 2)];
console.log(`median   main thread ${median('main').toFixed(1)} µs/call   process ${median('process').toFixed(1)} µs/call   gc wall ${median('gc').toFixed(1)} µs/call   per 1,000 calls: ${median('scavenges').toFixed(2)} scavenges, ${median('markCompacts').toFixed(2)} mark-compacts`);

for (const cs of sessions) await gw.closeSession(cs, 'bench done');
await core.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);

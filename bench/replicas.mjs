// Replica benchmark (`npm run bench -- --variants replicas`): one gateway on its SQLite data dir against three
// gateways sharing a throwaway Redis and PostgreSQL behind the round-robin balancer, all on this machine, with the
// same agent limits so every call reserves and reconciles a budget. Two more variants split the loss against one SQLite
// process: "three sqlite" runs three gateways that share nothing (each its own data dir) behind the balancer, so it
// costs what three processes on this machine cost and nothing else; "one shared" puts one of the shared replicas alone
// behind a balancer, so it costs what the shared stores cost and nothing else. 2026-07-28 clients (stateless POSTs),
// so any replica may answer any call. Also times one budget reservation in Redis against the embedded store.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBalancer } from './balancer.mjs';
import { cpuSeconds, freePort, pct, ROOT, waitForLine } from './proc.mjs';
import { sharedServersMissing, startPostgresServer, startRedisServer } from './shared-servers.mjs';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' } };
// Generous limits: never refused, but each call is counted against an agent window and a workflow total. The agent
// may name its workflows (canSetWorkflow), or the "wf" rows' X-Workflow-Id would be ignored and every call would
// start a workflow of its own, as in the rows without it.
export const LOCAL_AGENT = 'id: local\ncanSetWorkflow: true\ntools: { allow: ["*"] }\nlimits:\n  workflow: { toolCalls: 100000000 }\n  perMinute: { toolCalls: 100000000 }\n  perDay: { toolCalls: 100000000 }\n';

export async function startUpstream() {
  const proc = spawn(process.execPath, [join(ROOT, 'test/fixtures/feature-server.mjs'), '--http', '--port', '0', '--name', 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const m = await waitForLine(proc.stdout, /listening (http:\/\/\S+)/, 'upstream', proc, 20_000);
  proc.stdout.resume();
  return { url: m[1], proc };
}

/** One home (config, manifests, data) for every replica of a variant. */
export function home(upstreamUrl, gatewayYaml) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-replicas-'));
  for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'servers.d', 'bench.yaml'), `name: bench\ntransport: http\nurl: ${upstreamUrl}\n`);
  writeFileSync(join(dir, 'agents.d', 'local.yaml'), LOCAL_AGENT);
  writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml || '{}\n');
  return dir;
}

export async function serve(dir, profile) {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [...(profile ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', profile] : []), join(ROOT, 'bin/switchyard.js'), 'serve', '--port', String(port), '--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' }, cwd: ROOT },
  );
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}`);
    if ((await fetch(`${base}/readyz`).then((r) => r.ok, () => false))) break;
    if (Date.now() > deadline) throw new Error('gateway was not ready in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, proc };
}

/**
 * A 2026-07-28 client; with `workflowId` its calls join that workflow (as a session's do), else each starts its own.
 * Every answer must name the workflow it ran in as asked: a join the gateway did not make fails the call.
 */
export function client(url, workflowId) {
  let seq = 0;
  const joined = workflowId ? { 'x-workflow-id': workflowId } : {};
  return async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'bench__add', ...joined },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++seq, method: 'tools/call', params: { name: 'bench__add', arguments: { a: 2, b: 3 }, _meta: META } }),
    });
    const text = await res.text();
    const data = res.headers.get('content-type')?.includes('text/event-stream') ? text.split('\n').filter((l) => l.startsWith('data: ')).pop().slice(6) : text;
    const msg = JSON.parse(data);
    if (msg.error || msg.result?.isError) throw new Error(msg.error?.message ?? 'tool error');
    const ran = msg.result?._meta?.['io.switchyard/workflowId'];
    if (workflowId && ran !== workflowId) throw new Error(`asked to join workflow ${workflowId}, the call ran in ${ran}`);
  };
}

const cpuOf = (pids) => pids.reduce((s, p) => { try { return s + cpuSeconds(p); } catch { return s; } }, 0);

/**
 * Calls/s, p50/p99 and CPU per call summed over every gateway process of the variant; `groups` (name → () => pids)
 * adds CPU per call of other processes (cpuByGroup). The first call of each client must succeed, so a setup that
 * refuses or does not join fails the bench instead of counting fast errors as calls.
 */
export async function measure(url, pids, sessions, seconds, joinWorkflows, groups = {}) {
  const run = Math.random().toString(36).slice(2, 8);
  const calls = Array.from({ length: sessions }, (_, i) => client(url, joinWorkflows ? `bench-${run}-${i}` : undefined));
  await Promise.all(calls.map((c) => c()));
  await Promise.all(calls.map(async (c) => { for (let i = 1; i < 50; i++) await c(); }));
  const latencies = [];
  let errors = 0;
  const groupPids = Object.fromEntries(Object.entries(groups).map(([k, f]) => [k, f()]));
  const group0 = Object.fromEntries(Object.entries(groupPids).map(([k, p]) => [k, cpuOf(p)]));
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    calls.map(async (c) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        // A failed call is not a call served: counted apart, so fast errors cannot pass for throughput.
        await c().then(() => latencies.push(performance.now() - t0), () => errors++);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu1 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const cpuByGroup = Object.fromEntries(Object.entries(groupPids).map(([k, p]) => [k, ((cpuOf(p) - group0[k]) * 1e6) / latencies.length]));
  latencies.sort((a, b) => a - b);
  return { calls: latencies.length, errors, rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99), cpuUs: ((cpu1 - cpu0) * 1e6) / latencies.length, cpuByGroup };
}

/** Microseconds per reserve + release of one tool call's budget, sequential: the embedded store, then Redis. */
async function budgetCheckCost(redisUrl) {
  const reservation = { workflowId: 'bench-wf', agentId: 'bench', amounts: { calls: 1, toolCalls: 1 }, limits: [{ subject: 'agent', window: 'perMinute', dimension: 'toolCalls', max: 1e12, mode: 'reserve' }, { subject: 'workflow', window: 'total', dimension: 'toolCalls', max: 1e12, mode: 'reserve' }] };
  const time = async (store, n) => {
    for (let i = 0; i < 200; i++) await store.reserve(reservation);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await store.reserve(reservation);
    return ((performance.now() - t0) * 1000) / n;
  };
  const out = {};
  const { MemoryCounterStore } = await import('../dist/stores/memory/counters.js');
  out.embedded = await time(new MemoryCounterStore({}), 20_000);
  const redisModule = join(ROOT, 'dist/stores/redis/counters.js');
  const clientModule = join(ROOT, 'dist/stores/redis/client.js');
  if (!existsSync(redisModule) || !existsSync(clientModule)) return { ...out, redis: undefined, why: 'this build has no Redis counter store (dist/stores/redis/counters.js)' };
  const { default: pino } = await import('pino');
  const { RedisClient } = await import(clientModule);
  const { RedisCounterStore } = await import(redisModule);
  const client = new RedisClient({ url: redisUrl, keyPrefix: 'bench:', log: pino({ level: 'silent' }) });
  await client.ready?.();
  const store = new RedisCounterStore({ client });
  out.redis = await time(store, 5_000);
  await store.close?.();
  await client.close();
  return out;
}

const fmt = (r) => `${r.rps.toFixed(0).padStart(6)} calls/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   ${r.cpuUs.toFixed(0).padStart(5)} µs cpu/call (all gateways)   (${r.calls} calls, ${r.errors} errors)`;

/** The upstream, a throwaway Redis and a throwaway PostgreSQL; each one's stop goes onto `cleanup`. */
export async function startBackends(cleanup) {
  const upstream = await startUpstream();
  cleanup.push(() => upstream.proc.kill());
  const redis = await startRedisServer();
  cleanup.push(redis.close);
  const pg = await startPostgresServer();
  cleanup.push(pg.close);
  return { upstream, redis, pg };
}

export async function runReplicasBench({ sessions, seconds, rounds, profile }) {
  const missing = sharedServersMissing();
  if (missing) {
    console.log(`replicas bench skipped: ${missing}`);
    return;
  }
  const cleanup = [];
  try {
    const { upstream, redis, pg } = await startBackends(cleanup);

    const oneDir = home(upstream.url, '');
    cleanup.push(() => rmSync(oneDir, { recursive: true, force: true }));
    const one = await serve(oneDir);
    cleanup.push(() => one.proc.kill());
    const oneLb = await startBalancer({ targets: [one.base] });
    cleanup.push(oneLb.close);
    // Three gateways sharing nothing: each keeps its own budgets, so this is no deployment, only the floor of what
    // three processes cost on this machine whatever their stores do.
    const alone = await Promise.all([0, 1, 2].map(async () => {
      const dir = home(upstream.url, '');
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const g = await serve(dir);
      cleanup.push(() => g.proc.kill());
      return g;
    }));
    const aloneLb = await startBalancer({ targets: alone.map((g) => g.base) });
    cleanup.push(aloneLb.close);

    const lbPort = await freePort();
    const sharedDir = home(upstream.url, `publicUrl: http://127.0.0.1:${lbPort}\nstate:\n  redis: ${redis.url}\nstore:\n  postgres: ${pg.url}\n`);
    cleanup.push(() => rmSync(sharedDir, { recursive: true, force: true }));
    const first = await serve(sharedDir, profile);
    const three = [first, ...(await Promise.all([serve(sharedDir), serve(sharedDir)]))];
    // SIGTERM lets a profiled replica write its profile before the folder goes.
    for (const r of three) cleanup.push(() => (r.proc.kill(), new Promise((res) => r.proc.once('exit', res))));
    const lb = await startBalancer({ targets: three.map((r) => r.base), port: lbPort });
    cleanup.push(lb.close);
    // "one shared": the first replica alone behind its own balancer, the other two idle: what the shared stores cost
    // per call without the extra processes (the idle two still run their timers).
    const oneSharedLb = await startBalancer({ targets: [first.base] });
    cleanup.push(oneSharedLb.close);

    console.log(`switchyard bench replicas: ${sessions} clients, ${seconds} s per measurement, ${rounds} rounds, tool add with agent limits, Node ${process.version}`);
    // "wf": each client's calls join one workflow (like a session's); otherwise every call is a workflow of its own.
    const rows = { 'one sqlite': [], 'one sqlite +lb': [], 'three sqlite +lb': [], 'one shared +lb': [], 'three shared +lb': [], 'one sqlite +lb wf': [], 'three sqlite +lb wf': [], 'one shared +lb wf': [], 'three shared +lb wf': [] };
    for (let round = 1; round <= rounds; round++) {
      const plan = [
        ['one sqlite', `${one.base}/mcp`, [one.proc.pid], false],
        ['one sqlite +lb', `${oneLb.url}/mcp`, [one.proc.pid], false],
        ['three sqlite +lb', `${aloneLb.url}/mcp`, alone.map((g) => g.proc.pid), false],
        ['one shared +lb', `${oneSharedLb.url}/mcp`, [first.proc.pid], false],
        ['three shared +lb', `${lb.url}/mcp`, three.map((r) => r.proc.pid), false],
        ['one sqlite +lb wf', `${oneLb.url}/mcp`, [one.proc.pid], true],
        ['three sqlite +lb wf', `${aloneLb.url}/mcp`, alone.map((g) => g.proc.pid), true],
        ['one shared +lb wf', `${oneSharedLb.url}/mcp`, [first.proc.pid], true],
        ['three shared +lb wf', `${lb.url}/mcp`, three.map((r) => r.proc.pid), true],
      ];
      for (const [name, url, pids, join] of plan) {
        const r = await measure(url, pids, sessions, seconds, join);
        rows[name].push(r);
        console.log(`round ${round}  ${name.padEnd(20)} ${fmt(r)}`);
      }
    }
    const mean = (rs, k) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
    console.log('\nsummary (mean over rounds)');
    for (const [name, rs] of Object.entries(rows)) {
      const baseName = name.endsWith(' wf') ? 'one sqlite +lb wf' : 'one sqlite +lb';
      const loss = 1 - mean(rs, 'rps') / mean(rows[baseName], 'rps');
      console.log(`  ${name.padEnd(20)} ${mean(rs, 'rps').toFixed(0)} calls/s  p50 ${mean(rs, 'p50').toFixed(2)} ms  p99 ${mean(rs, 'p99').toFixed(2)} ms  ${mean(rs, 'cpuUs').toFixed(0)} µs cpu/call  ${name === baseName ? '(baseline)' : `${Math.abs(loss * 100).toFixed(1)} % ${loss >= 0 ? 'fewer' : 'more'} calls/s than ${baseName}`}`);
    }
    // The loss of three shared replicas against one SQLite process, split two ways: (a) three processes that share
    // nothing against one, then what sharing adds among three; (b) the shared stores in one process, then what two more
    // processes add. Where (a)'s first part alone is over a goal, no store can meet it on this machine.
    console.log('\nloss against one SQLite process, split');
    for (const wf of ['', ' wf']) {
      const base = mean(rows[`one sqlite +lb${wf}`], 'rps');
      const loss = (name) => 1 - mean(rows[`${name}${wf}`], 'rps') / base;
      const all = loss('three shared +lb');
      const procs = loss('three sqlite +lb');
      const stores = loss('one shared +lb');
      const pctOf = (x) => `${(x * 100).toFixed(1)} %`;
      console.log(`  ${(wf ? 'joined workflows' : 'new workflows').padEnd(18)} three shared ${pctOf(all)} = three processes sharing nothing ${pctOf(procs)} + sharing among three ${pctOf(all - procs)}`);
      console.log(`  ${''.padEnd(18)} three shared ${pctOf(all)} = shared stores in one process ${pctOf(stores)} + two more processes ${pctOf(all - stores)}`);
    }
    const cost = await budgetCheckCost(redis.url);
    console.log(`\nbudget reservation, sequential: embedded ${cost.embedded.toFixed(1)} µs` + (cost.redis === undefined ? `; Redis not measured: ${cost.why}` : `, Redis ${cost.redis.toFixed(1)} µs (one Lua call, round trip included)`));
  } finally {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  }
}

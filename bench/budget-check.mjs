#!/usr/bin/env node
// Cost of one budget reservation (LimitCounters.tryConsume: a tool call's step, and a model call's token and dollar
// estimate held against workflow, agent and team limits) with the embedded SQLite counters vs the shared Redis
// counters: latency one at a time (p50/p99 µs), CPU per reservation in this process and in redis-server, and
// reservations/s with 16 in flight.
//
//   npm run build && node bench/budget-check.mjs [--iterations 20000] [--redis-url redis://…]
//   import { runBudgetBench } from './budget-check.mjs'   (the replicas variant of bench/run.mjs)
//
// Without --redis-url a throwaway redis-server is started on a free port (its CPU is then measured too).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { cpuSeconds, freePort, ROOT, waitForLine } from './proc.mjs';

const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A tool call: a step, a call and a tool call against the workflow, the agent's minute and the team's day. */
function toolRequest(i) {
  return {
    workflowId: `wf-${i % 500}`,
    agentId: `agent-${i % 20}`,
    team: 'eng',
    kind: 'tools/call',
    agentLimits: { workflow: { steps: 1e12, toolCalls: 1e12 }, perMinute: { calls: 1e9, toolCalls: 1e9 } },
    teamLimits: { perDay: { toolCalls: 1e12 } },
  };
}

/** A model call reserving 900 tokens and $0.01 against workflow, agent and team token and dollar limits (a hold). */
function modelRequest(i) {
  return {
    workflowId: `wf-${i % 500}`,
    agentId: `agent-${i % 20}`,
    team: 'eng',
    kind: 'model/call',
    agentLimits: { workflow: { tokens: 1e12, costUsd: 1e9 }, perMinute: { calls: 1e9, tokens: 1e12 }, perDay: { tokens: 1e12, costUsd: 1e9 } },
    teamLimits: { perDay: { tokens: 1e12, costUsd: 1e9 } },
    reserve: { tokens: 900, costUsd: 0.01 },
  };
}

async function measure(name, counters, iterations, serverPid, request) {
  for (let i = 0; i < 500; i++) await counters.tryConsume(request(i)); // warm-up: JIT, scripts loaded, keys created
  const lat = new Float64Array(iterations);
  const cpu0 = process.cpuUsage();
  const srv0 = serverPid ? cpuSeconds(serverPid) : 0;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    const refusal = await counters.tryConsume(request(i));
    lat[i] = performance.now() - s;
    if (refusal) throw new Error(`${name}: reservation refused: ${refusal.message}`);
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const srv = serverPid ? cpuSeconds(serverPid) - srv0 : undefined;
  lat.sort();
  // Throughput with 16 reservations in flight (a busy gateway): what pipelining over one connection gives.
  const CONC = 16;
  const tc = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (next < iterations) await counters.tryConsume(request(next++));
  }));
  const concurrentPerSec = iterations / ((performance.now() - tc) / 1000);
  return {
    name,
    p50Us: percentile(lat, 50) * 1000,
    p99Us: percentile(lat, 99) * 1000,
    sequentialPerSec: iterations / (wall / 1000),
    concurrentPerSec,
    clientCpuUs: ((cpu.user + cpu.system) / iterations),
    serverCpuUs: srv === undefined ? undefined : (srv * 1e6) / iterations,
  };
}

export async function runBudgetBench({ iterations = 20_000, redisUrl } = {}) {
  const { LimitCounters, LIMIT_DIMENSIONS } = await dist('limits/counters.js');
  const { openRedis } = await dist('stores/redis/client.js');
  const { RedisCounterStore } = await dist('stores/redis/counters.js');
  const { default: pino } = await import('pino');
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-budget-bench-'));
  let server;
  try {
    if (!redisUrl) {
      const port = await freePort();
      server = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      server.stdout.setEncoding('utf8');
      await waitForLine(server.stdout, /Ready to accept connections/, 'redis-server', server);
      server.stdout.resume();
      redisUrl = `redis://127.0.0.1:${port}/0`;
    }
    const results = [];
    const sqlite = new LimitCounters({ dataDir: dir });
    results.push(await measure('sqlite tool call', sqlite, iterations, undefined, toolRequest));
    results.push(await measure('sqlite model reservation', sqlite, iterations, undefined, modelRequest));
    await sqlite.close();
    const client = openRedis({ url: redisUrl, keyPrefix: `bench:${process.pid}:`, log: pino({ level: 'warn' }) });
    await client.ready(5000);
    const redis = new LimitCounters({ store: new RedisCounterStore({ client, dimensions: LIMIT_DIMENSIONS }) });
    results.push(await measure('redis tool call', redis, iterations, server?.pid, toolRequest));
    results.push(await measure('redis model reservation', redis, iterations, server?.pid, modelRequest));
    await client.close();
    for (const r of results) {
      const srv = r.serverCpuUs === undefined ? '' : `, redis-server ${r.serverCpuUs.toFixed(1)} µs CPU`;
      console.log(
        `${r.name.padEnd(26)} p50 ${r.p50Us.toFixed(1)} µs  p99 ${r.p99Us.toFixed(1)} µs  ${Math.round(r.sequentialPerSec)}/s one at a time, ${Math.round(r.concurrentPerSec)}/s 16 in flight; CPU ${r.clientCpuUs.toFixed(1)} µs here${srv}`,
      );
    }
    return results;
  } finally {
    server?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20000' }, 'redis-url': { type: 'string' } } });
  await runBudgetBench({ iterations: Number(values.iterations), redisUrl: values['redis-url'] });
}

// Model-route benchmark (`npm run bench -- --variants model`): concurrent clients call chat completions on the fake
// provider (test/fixtures/fake-provider.mjs) directly and through the gateway, non-stream and stream, in one run.
// The gateway runs with an API-key agent, token and cost budgets, and the audit trail on (batched). Prints calls/s,
// p50/p99 and their ratio / difference to direct, and time to first token for streams.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, freePort, ROOT, waitForLine } from './proc.mjs';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One POST; resolves with the time to the first body byte and to the end, in ms. */
function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first;
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      res.on('data', () => (first ??= performance.now()));
      res.on('end', () => (res.statusCode === 200 ? resolve({ ttfb: (first ?? performance.now()) - t0, total: performance.now() - t0 }) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function measure(url, headers, stream, { clients, seconds, pid }) {
  const body = JSON.stringify({ model: stream === 'direct' ? 'fake-ok' : 'bench', messages: [{ role: 'user', content: 'What is the capital of France?' }], max_tokens: 64, stream: stream === true });
  const send = () => post(url, headers, body);
  await Promise.all(Array.from({ length: clients }, async () => { for (let i = 0; i < 30; i++) await send(); }));
  const totals = [];
  const ttfbs = [];
  let errors = 0;
  const cpu0 = cpuSeconds(pid);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        try {
          const r = await send();
          totals.push(r.total);
          ttfbs.push(r.ttfb);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu1 = cpuSeconds(pid);
  const cpuUs = cpu0 === undefined || cpu1 === undefined ? NaN : ((cpu1 - cpu0) * 1e6) / totals.length;
  const pct = (xs, p) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
  return { rps: totals.length / elapsed, p50: pct(totals, 50), p99: pct(totals, 99), ttft50: pct(ttfbs, 50), cpuUs, calls: totals.length, errors };
}

export async function runModelBench({ clients = 16, seconds = 5, rounds = 2, profile } = {}) {
  const fake = spawn(process.execPath, [join(ROOT, 'test/fixtures/fake-provider.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fakeUrl = (await waitForLine(fake.stdout, /listening (http:\/\/\S+)/, 'fake provider', fake, 20_000))[1];
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-model-'));
  for (const d of ['servers.d', 'agents.d']) mkdirSync(join(dir, d));
  const key = `bench-${randomBytes(16).toString('hex')}`;
  writeFileSync(
    join(dir, 'agents.d', 'bench.yaml'),
    `id: bench\nteam: perf\ncredentials:\n  apiKeys: ["sha256:${createHash('sha256').update(key).digest('hex')}"]\nmodels: { allow: ["bench*"] }\nlimits:\n  workflow: { tokens: 1000000000000, costUsd: 1000000000 }\n  perMinute: { tokens: 1000000000000 }\n  perDay: { tokens: 1000000000000, costUsd: 1000000000 }\n`,
  );
  writeFileSync(join(dir, 'gateway.yaml'), `models:\n  - name: bench\n    baseUrl: ${fakeUrl}/v1\n    model: fake-ok\n    apiKey: sk-bench\n    price: { input: 0.15, output: 0.6 }\nteams:\n  perf: { perDay: { tokens: 1000000000000 } }\n`);
  const port = await freePort();
  const gw = spawn(
    process.execPath,
    [...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []), join(ROOT, 'bin/switchyard.js'), 'serve', '--port', String(port), '--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' }, cwd: ROOT },
  );
  // Per-step info lines are part of the product but not of this measurement (as in the MCP bench): warn, poll /healthz.
  const gwUrl = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 20_000; ; ) {
    if (gw.exitCode !== null) throw new Error(`gateway exited with ${gw.exitCode}`);
    if (await fetch(`${gwUrl}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error('gateway did not start in 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const direct = `${fakeUrl}/v1/chat/completions`;
  const through = `${gwUrl}/v1/chat/completions`;
  const auth = { authorization: `Bearer ${key}` };
  const opts = { clients, seconds };
  const rows = { 'direct': [], 'gateway': [], 'direct stream': [], 'gateway stream': [] };
  console.log(`switchyard model bench: ${clients} clients, ${seconds} s per measurement, ${rounds} rounds, Node ${process.version}; auth + budgets + audit on`);
  const fmt = (r) => `${r.rps.toFixed(0).padStart(6)} calls/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms  ttfb p50 ${r.ttft50.toFixed(2).padStart(6)} ms  ${r.cpuUs.toFixed(0).padStart(5)} µs cpu/call  (${r.calls} calls, ${r.errors} errors)`;
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [name, url, headers, stream] of [
        ['direct', direct, {}, 'direct'],
        ['gateway', through, auth, false],
        ['direct stream', direct, {}, true],
        ['gateway stream', through, auth, true],
      ]) {
        const body = stream === true && name.startsWith('direct') ? 'direct-stream' : stream;
        const r = await measure(url, headers, body === 'direct-stream' ? true : stream, { ...opts, pid: name.startsWith('direct') ? fake.pid : gw.pid }).catch((e) => { throw new Error(`${name}: ${e.message}`); });
        rows[name].push(r);
        console.log(`round ${round}  ${name.padEnd(15)} ${fmt(r)}`);
      }
    }
    const mean = (rs, k) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
    console.log('\nsummary (mean over rounds)');
    for (const [d, g] of [['direct', 'gateway'], ['direct stream', 'gateway stream']]) {
      const ratio = mean(rows[g], 'rps') / mean(rows[d], 'rps');
      console.log(
        `  ${g.padEnd(15)} ratio ${ratio.toFixed(3)}x direct calls/s   added p50 ${(mean(rows[g], 'p50') - mean(rows[d], 'p50')).toFixed(2)} ms   added p99 ${(mean(rows[g], 'p99') - mean(rows[d], 'p99')).toFixed(2)} ms   ttfb p50 ${mean(rows[g], 'ttft50').toFixed(2)} ms vs ${mean(rows[d], 'ttft50').toFixed(2)} ms direct   gateway ${mean(rows[g], 'cpuUs').toFixed(0)} µs cpu/call (provider ${mean(rows[d], 'cpuUs').toFixed(0)})`,
      );
    }
  } finally {
    gw.kill();
    if (profile) await new Promise((r) => gw.once('exit', r));
    fake.kill();
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

#!/usr/bin/env node
// Memory per idle session: 1,000 client sessions that initialized and then went quiet, with one HTTP upstream
// configured. Reports the gateway's RSS and live heap (after a full GC, read through bench/memory-probe.mjs) per
// session, for sessions that only initialized and for sessions that also listed tools once (which opens their own
// upstream session).
//
//   npm run bench -- --memory [--sessions 1000]
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RawSession, ROOT, rssKb, startGateway, waitForLine } from './proc.mjs';

const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--memory'), options: { sessions: { type: 'string', default: '1000' } } });
const SESSIONS = Number(values.sessions);
const BATCH = 50;

const upstream = spawn(process.execPath, [join(ROOT, 'test/fixtures/feature-server.mjs'), '--http', '--port', '0', '--name', 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
upstream.stdout.setEncoding('utf8');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-memory-'));
let gw;
try {
  const [, url] = await waitForLine(upstream.stdout, /listening (http:\/\/\S+)/, 'upstream', upstream);
  mkdirSync(join(dir, 'servers.d'));
  mkdirSync(join(dir, 'agents.d'));
  writeFileSync(join(dir, 'servers.d', 'bench.yaml'), `name: bench\ntransport: http\nurl: ${url}\n`);
  writeFileSync(join(dir, 'gateway.yaml'), `sessions: { max: ${SESSIONS * 3} }\n`);
  const report = (what, before, after) => {
    const per = (k) => ((after[k] - before[k]) / SESSIONS).toFixed(1).padStart(6);
    console.log(`  ${what.padEnd(44)} per session: RSS ${per('rssBeforeGcKb')} KB (${per('rssKb')} after GC)   live heap ${per('heapKb')} KB   external ${per('externalKb')} KB`);
  };
  console.log(`switchyard memory bench: ${SESSIONS} idle sessions, one HTTP upstream, Node ${process.version}`);
  // Each case on a fresh gateway, so one case's garbage and heap growth do not land in the other's figures.
  for (const [what, listOnce] of [['initialized, then idle', false], ['initialized, listed tools once, then idle', true]]) {
    gw = await startGateway(dir, ['--expose-gc', '--import', join(ROOT, 'bench/memory-probe.mjs')]);
    const pid = gw.proc.pid;
    const memory = async () => {
      const rssBeforeGcKb = rssKb(pid);
      const line = waitForLine(gw.proc.stderr, /MEM (\{.*\})\n/, 'gateway memory probe', undefined, 10_000);
      process.kill(pid, 'SIGUSR2');
      const m = JSON.parse((await line)[1]);
      return { rssBeforeGcKb, rssKb: rssKb(pid), heapKb: m.heapUsed / 1024, externalKb: m.external / 1024 };
    };
    const open = async (n) => {
      const out = [];
      for (let i = 0; i < n; i += BATCH) {
        const batch = await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, () => new RawSession(gw.url).initialize()));
        if (listOnce) await Promise.all(batch.map((s) => s.request('tools/list')));
        out.push(...batch);
      }
      return out;
    };
    // Warm up allocators, JIT and the upstream pool before the baseline.
    const warm = await open(BATCH);
    await Promise.all(warm.map((s) => s.close()));
    const before = await memory();
    const sessions = await open(SESSIONS);
    const after = await memory();
    report(what, before, after);
    await Promise.all(sessions.map((s) => s.close()));
    gw.proc.kill();
    await new Promise((r) => gw.proc.once('exit', r));
    gw = undefined;
  }
  console.log('  (RSS follows what V8 reserves for its heap and can even fall between two readings; live heap is the figure to compare)');
} finally {
  gw?.proc.kill();
  upstream.kill();
  rmSync(dir, { recursive: true, force: true });
}

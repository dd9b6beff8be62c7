#!/usr/bin/env node
// List benchmark: `tools/list` through the gateway over many HTTP upstreams (default 100 servers x 50 tools, all
// served by one process, bench/many-servers.mjs). Measures the first list of a session (its upstream sessions open
// and nothing is cached), the first list of a second session (sessions open, lists cached), and warm lists.
//
//   npm run bench -- --list [--servers 100] [--tools 50] [--lists 50]
//
// Warm lists are timed twice: to the parsed result, and to the answer's last byte (the gateway's part).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, pct, RawSession, ROOT, startGateway, waitForLine } from './proc.mjs';

const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--list'), options: { servers: { type: 'string', default: '100' }, tools: { type: 'string', default: '50' }, lists: { type: 'string', default: '50' }, profile: { type: 'string' } } });
const SERVERS = Number(values.servers);
const TOOLS = Number(values.tools);
const LISTS = Number(values.lists);

const upstream = spawn(process.execPath, [join(ROOT, 'bench/many-servers.mjs'), '--servers', String(SERVERS), '--tools', String(TOOLS)], { stdio: ['ignore', 'pipe', 'inherit'] });
upstream.stdout.setEncoding('utf8');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-lists-'));
let gw;
try {
  const [, base] = await waitForLine(upstream.stdout, /listening (http:\/\/\S+)/, 'many-servers', upstream);
  mkdirSync(join(dir, 'servers.d'));
  mkdirSync(join(dir, 'agents.d'));
  for (let i = 0; i < SERVERS; i++) writeFileSync(join(dir, 'servers.d', `s${String(i).padStart(3, '0')}.yaml`), `name: s${i}\ntransport: http\nurl: ${base}/s/${i}/mcp\n`);
  writeFileSync(join(dir, 'gateway.yaml'), 'listTimeoutMs: 20000\n');
  // --profile DIR: a V8 CPU profile of the gateway (open it in Chrome DevTools).
  gw = await startGateway(dir, values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : []);
  const upstreamLists = async () => (await (await fetch(`${base}/stats`)).json()).toolsList;
  // Times one list from the request to the parsed result; `answered` also gets the time to the answer's last byte
  // (what the gateway takes, without this client's decoding and JSON.parse of the whole list).
  const timed = async (s, answered) => {
    const timing = {};
    const t0 = performance.now();
    const r = await s.request('tools/list', {}, timing);
    const ms = performance.now() - t0;
    answered?.push(timing.received - t0);
    if (r.tools.length !== SERVERS * TOOLS) throw new Error(`listed ${r.tools.length} tools, expected ${SERVERS * TOOLS}`);
    return ms;
  };

  console.log(`switchyard list bench: ${SERVERS} HTTP upstreams x ${TOOLS} tools (${SERVERS * TOOLS} tools), ${LISTS} warm lists, Node ${process.version}`);
  const a = await new RawSession(gw.url).initialize();
  const cold = await timed(a);
  const coldAsked = await upstreamLists();
  const b = await new RawSession(gw.url).initialize();
  const secondSession = await timed(b);
  const warm = [];
  const asked0 = await upstreamLists();
  const cpu0 = cpuSeconds(gw.proc.pid);
  const answered = [];
  for (let i = 0; i < LISTS; i++) warm.push(await timed(i % 2 ? b : a, answered));
  const cpuMs = ((cpuSeconds(gw.proc.pid) - cpu0) * 1000) / LISTS;
  const warmAsked = (await upstreamLists()) - asked0;
  // A client declaring other capabilities gets lists of its own: its first list asks every upstream again.
  const c = await new RawSession(gw.url, { sampling: {} }).initialize();
  const otherVariant = await timed(c);
  warm.sort((x, y) => x - y);
  answered.sort((x, y) => x - y);
  const f = (ms) => `${ms.toFixed(1).padStart(7)} ms`;
  console.log(`  first list of a session (opens ${SERVERS} upstream sessions, nothing cached) ${f(cold)}   upstream tools/list: ${coldAsked}`);
  console.log(`  first list of a second session (opens its sessions, lists cached)      ${f(secondSession)}`);
  console.log(`  first list of a client with other capabilities (its own variant)       ${f(otherVariant)}`);
  console.log(`  warm: p50 ${f(pct(warm, 50))}   p99 ${f(pct(warm, 99))}   mean ${f(warm.reduce((s, x) => s + x, 0) / warm.length)}   gateway cpu/list ${cpuMs.toFixed(1)} ms   upstream tools/list during warm lists: ${warmAsked}`);
  console.log(`  warm, to the answer's last byte (before the client decodes it): p50 ${f(pct(answered, 50))}   p99 ${f(pct(answered, 99))}`);
  await Promise.all([a.close(), b.close(), c.close()]);
} finally {
  gw?.proc.kill();
  if (values.profile && gw) await new Promise((r) => gw.proc.once('exit', r));
  upstream.kill();
  rmSync(dir, { recursive: true, force: true });
}

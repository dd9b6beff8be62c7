// Console benchmark: first-load times of the admin API queries behind the console pages on a seeded trail of a
// million steps (`npm run bench -- --variants console [--steps 1000000]`). The seeded data dir is kept in the
// system temp folder and reused by later runs with the same size.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedConsoleTrail } from './console-seed.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN = 'console-bench-admin';
const GOAL_MS = 500;

function seeded(steps) {
  const dir = join(tmpdir(), `switchyard-bench-console-${steps}`);
  const marker = join(dir, 'seeded.json');
  if (existsSync(marker)) return { dir, ...JSON.parse(readFileSync(marker, 'utf8')) };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  const t = Date.now();
  let last = 0;
  const info = seedConsoleTrail(join(dir, 'data'), {
    steps,
    onProgress: (n) => {
      if (n - last >= 100_000) (last = n), process.stdout.write(`  seeded ${n} steps\r`);
    },
  });
  console.log(`seeded ${steps} steps in ${((Date.now() - t) / 1000).toFixed(1)} s into ${dir}`);
  writeFileSync(marker, JSON.stringify(info));
  return { dir, ...info };
}

function startGateway(dir) {
  mkdirSync(join(dir, 'servers.d'), { recursive: true });
  mkdirSync(join(dir, 'agents.d'), { recursive: true });
  writeFileSync(join(dir, 'gateway.yaml'), `admin:\n  tokens: ["sha256:${createHash('sha256').update(ADMIN).digest('hex')}"]\n`);
  const proc = spawn(process.execPath, [join(ROOT, 'bin', 'switchyard.js'), 'serve', '--port', '0', '--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')], {
    env: { ...process.env, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start in 120 s:\n${buf.slice(-2000)}`)), 120_000);
    proc.stdout.on('data', (c) => {
      buf += c;
      const m = /"url":"(http:[^"]+)"[^\n]*"msg":"listening"/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    });
    proc.once('exit', (code) => reject(new Error(`gateway exited with ${code}:\n${buf.slice(-2000)}`)));
  });
}

async function timed(url) {
  const t = performance.now();
  const res = await fetch(url, { headers: { authorization: `Bearer ${ADMIN}` } });
  const body = await res.text();
  return { ms: performance.now() - t, status: res.status, bytes: body.length, body };
}

export async function runConsoleBench({ steps = 1_000_000 } = {}) {
  const { dir, longWorkflow, needle } = seeded(steps);
  const gw = await startGateway(dir);
  const api = `${gw.url}/admin/api`;
  try {
    const list = JSON.parse((await timed(`${api}/workflows?limit=1`)).body);
    const normal = list.workflows[0]?.id;
    const page1 = JSON.parse((await timed(`${api}/audit?limit=100`)).body);
    const queries = [
      ['workflows', '/workflows'],
      ['workflows ?agent', '/workflows?agent=agent-3'],
      ['workflows ?state', '/workflows?state=done'],
      ['workflow (100 steps)', `/workflows/${normal}`],
      ['workflow (10,000 steps)', `/workflows/${longWorkflow}`],
      ['workflow args (audit ?workflowId)', `/audit?workflowId=${longWorkflow}&limit=1000`],
      ['audit', '/audit'],
      ['audit page 2 (cursor)', `/audit?cursor=${page1.nextCursor}`],
      ['audit ?agent', '/audit?agent=agent-3'],
      ['audit ?outcome=refused', '/audit?outcome=refused'],
      ['audit ?reason', '/audit?reason=loop_detected'],
      ['audit ?user&since', `/audit?user=user-2@example.com&since=${new Date(Date.now() - 86_400_000).toISOString()}`],
      ['audit search in args', `/audit?q=${needle}`],
      ['audit search, common word', '/audit?q=value'],
      ['audit ?tool (exposed name)', '/audit?tool=bigquery__query'],
      ['audit ?tool matching nothing', '/audit?tool=nobody__nothing'],
      ['audit ?server matching nothing', '/audit?server=nothing'],
      ['audit ?user matching nothing', '/audit?user=nobody@example.com'],
      ['audit ?reason matching nothing', '/audit?reason=upstream_timeout'],
      ['audit ?outcome=error (none)', '/audit?outcome=error'],
      ['audit ?since in the future', `/audit?since=${new Date(Date.now() + 86_400_000).toISOString()}`],
      ['audit ?until 29 days ago', `/audit?until=${new Date(Date.now() - 29 * 86_400_000).toISOString()}`],
      ['audit ?agent&until 29 days ago', `/audit?agent=agent-3&until=${new Date(Date.now() - 29 * 86_400_000).toISOString()}`],
      ['overview', '/overview'],
      ['approvals', '/approvals'],
      ['models (spend by model)', '/spend?by=model'],
      ['models (spend by agent)', '/spend?by=agent'],
      ['models (spend by team)', '/spend?by=team'],
    ];
    console.log(`\nconsole queries on ${steps.toLocaleString('en')} steps (goal ≤ ${GOAL_MS} ms first load; median of 5 after)`);
    let over = 0;
    for (const [name, path] of queries) {
      // The first load after the gateway started (cold caches for this query), then five more.
      const first = await timed(`${api}${path}`);
      const again = [];
      for (let i = 0; i < 5; i++) again.push((await timed(`${api}${path}`)).ms);
      again.sort((a, b) => a - b);
      const note = first.status === 404 && path.startsWith('/spend') ? '  (no spend endpoint on this build)' : first.status !== 200 ? `  (HTTP ${first.status})` : '';
      if (first.status === 200 && first.ms > GOAL_MS) over++;
      console.log(`  ${name.padEnd(36)} first ${first.ms.toFixed(1).padStart(7)} ms   median ${again[2].toFixed(1).padStart(7)} ms   ${String(first.bytes).padStart(8)} bytes${note}`);
    }
    console.log(over === 0 ? `every answered query's first load is within ${GOAL_MS} ms` : `${over} query(ies) over ${GOAL_MS} ms`);
  } finally {
    gw.proc.kill();
  }
}

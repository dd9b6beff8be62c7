// Process helpers shared by the list and memory benchmarks: start a gateway on a configuration folder, wait for
// lines, read CPU and memory, speak raw MCP over HTTP.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { createServer } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export function waitForLine(stream, pattern, what, proc, ms = 30_000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not say ${pattern} in ${ms} ms:\n${buf.slice(-2000)}`)), ms);
    const onData = (c) => {
      buf += c;
      const m = pattern.exec(buf);
      if (m) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(m);
      }
    };
    stream.on('data', onData);
    proc?.once('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${buf.slice(-2000)}`)));
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Start `switchyard serve` on a folder holding gateway.yaml, servers.d and agents.d; resolves once /healthz answers. */
export async function startGateway(dir, nodeArgs = []) {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [...nodeArgs, join(ROOT, 'bin/switchyard.js'), 'serve', '--port', String(port), '--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' }, cwd: ROOT },
  );
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.resume();
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}`);
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error('gateway did not start in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, base, url: `${base}/mcp` };
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid, thread = false) {
  // The process's figure counts every thread (the audit writer's too); the main thread's own is under task/<pid>.
  const stat = readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * CPU seconds of each thread of a process, summed by name: `main` for the event loop, the kernel's thread name for
 * the rest (on Node 20 the audit writer and V8's GC and compiler helpers are all `node`; libuv's pool is
 * `libuv-worker`). Threads that ended between two readings are lost to both, so compare like with like.
 */
export function threadSeconds(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
  }
  return out;
}

/**
 * This thread's collections, counted as they happen (a PerformanceObserver sees its own isolate only): `minor` are
 * scavenges, `major` mark-compacts, `ms` their wall time. Entries arrive a few turns after the collection.
 */
export function watchGc() {
  const gc = { minor: 0, major: 0, ms: 0, stop: () => observer.disconnect() };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.ms += e.duration;
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
      else if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return gc;
}

export function rssKb(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

/** One MCP session over Streamable HTTP, spoken raw so the client costs little next to what it measures. */
export class RawSession {
  constructor(url, capabilities = {}) {
    this.url = url;
    this.capabilities = capabilities;
    this.id = undefined;
    this.seq = 0;
  }

  /** `timing`, when given, gets `received`: performance.now() once the answer's last byte is in, before it is decoded. */
  async post(body, timing) {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    if (this.id) headers['mcp-session-id'] = this.id;
    const res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(body) });
    this.id ??= res.headers.get('mcp-session-id') ?? undefined;
    const bytes = Buffer.from(await res.arrayBuffer());
    if (timing) timing.received = performance.now();
    const text = bytes.toString('utf8');
    if (res.status >= 400) throw new Error(`${body.method}: HTTP ${res.status} ${text.slice(0, 300)}`);
    if (body.id === undefined) return undefined;
    const json = (res.headers.get('content-type') ?? '').startsWith('text/event-stream')
      ? JSON.parse(text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).find((l) => l.includes('"id"')))
      : JSON.parse(text);
    if (json.error) throw new Error(`${body.method}: ${json.error.message}`);
    return json.result;
  }

  async initialize() {
    await this.post({ jsonrpc: '2.0', id: ++this.seq, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: this.capabilities, clientInfo: { name: 'bench', version: '1' } } });
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return this;
  }

  request(method, params = {}, timing = undefined) {
    return this.post({ jsonrpc: '2.0', id: ++this.seq, method, params }, timing);
  }

  async close() {
    if (!this.id) return;
    await fetch(this.url, { method: 'DELETE', headers: { 'mcp-session-id': this.id } }).catch(() => {});
  }
}

export const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

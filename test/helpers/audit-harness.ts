/**
 * Harness for the audit and limits end-to-end suites, on top of test/helpers/gateway.ts: a gateway "home" (config,
 * manifests and data dir) that outlives one process, so a test can stop, kill -9 and restart the gateway on the same
 * data; admin API calls; SDK tool calls turned into plain values; counting what the upstream fixture received.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CLI, REPO_ROOT, killTree, onOutputLines, readStats, scratch, stopAll, type Manifest, type StatLine } from './gateway.js';

export interface GatewayHome {
  dir: string;
  configPath: string;
  serversDir: string;
  agentsDir: string;
  dataDir: string;
  /** One JSON line per message the stdio fixtures of this home received (pass it with fixtureArgs()). */
  statsFile: string;
}

type Manifests = Record<string, Manifest>;

export interface HomeOptions {
  /** servers.d files; a function gets the home first (e.g. for its statsFile). */
  servers: Manifests | ((home: GatewayHome) => Manifests);
  agents?: Manifests;
  gatewayYaml?: Record<string, unknown>;
}

function write(folder: string, key: string, value: Manifest): void {
  const file = join(folder, /\.(ya?ml|json)$/.test(key) ? key : `${key}.yaml`);
  writeFileSync(file, typeof value === 'string' ? value : file.endsWith('.json') ? JSON.stringify(value) : toYaml(value));
}

/** A scratch directory (removed by stopAll) holding gateway.yaml, servers.d, agents.d and data. */
export function makeHome(opts: HomeOptions): GatewayHome {
  const dir = scratch('switchyard-home-');
  const home: GatewayHome = {
    dir,
    configPath: join(dir, 'gateway.yaml'),
    serversDir: join(dir, 'servers.d'),
    agentsDir: join(dir, 'agents.d'),
    dataDir: join(dir, 'data'),
    statsFile: join(dir, 'upstream-stats.jsonl'),
  };
  for (const d of [home.serversDir, home.agentsDir, home.dataDir]) mkdirSync(d, { recursive: true });
  writeFileSync(home.configPath, opts.gatewayYaml && Object.keys(opts.gatewayYaml).length > 0 ? toYaml(opts.gatewayYaml) : '{}\n');
  const servers = typeof opts.servers === 'function' ? opts.servers(home) : opts.servers;
  for (const [k, v] of Object.entries(servers)) write(home.serversDir, k, v);
  for (const [k, v] of Object.entries(opts.agents ?? {})) write(home.agentsDir, k, v);
  return home;
}

/** A stdio manifest for the feature fixture that records what it receives in the home's stats file. */
export function statsFixture(home: GatewayHome, extra: Record<string, unknown> = {}, args: string[] = []): Record<string, unknown> {
  return { command: 'node', args: ['test/fixtures/feature-server.mjs', '--stats-file', home.statsFile, ...args], ...extra };
}

/** The local agent's manifest: everything allowed, with the given limits. */
export function localAgent(limits: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'local', tools: { allow: ['*'] }, prompts: { allow: ['*'] }, resources: { allow: ['*'] }, limits, ...extra };
}

/** A home whose one upstream is the stats-recording feature fixture as `fx`, with the local agent's manifest if given. */
export function fixtureHome(local?: Record<string, unknown>, gatewayYaml?: Record<string, unknown>): GatewayHome {
  return makeHome({ servers: (h) => ({ fx: statsFixture(h) }), agents: local ? { local } : undefined, gatewayYaml });
}

/** fixtureHome() and a gateway launched on it. */
export async function launchFixtureHome(local?: Record<string, unknown>, gatewayYaml?: Record<string, unknown>): Promise<{ home: GatewayHome; gw: LaunchedGateway }> {
  const home = fixtureHome(local, gatewayYaml);
  return { home, gw: await launch(home) };
}

/**
 * A test file's shared gateway: registers beforeAll (launchFixtureHome) and afterAll (stopEverything) and returns an
 * object whose `home` and `gw` are set once beforeAll has run.
 */
export function fixtureGatewaySuite(local?: Record<string, unknown>, gatewayYaml?: Record<string, unknown>): { home: GatewayHome; gw: LaunchedGateway } {
  const suite = {} as { home: GatewayHome; gw: LaunchedGateway };
  beforeAll(async () => {
    Object.assign(suite, await launchFixtureHome(local, gatewayYaml));
  });
  afterAll(stopEverything);
  return suite;
}

/** A short random tag that keeps one run's call markers apart from another's. */
export function runTag(): string {
  return Math.random().toString(36).slice(2, 8);
}

// ---- the gateway process --------------------------------------------------------------------------------

const mine = new Set<ChildProcess>();

export interface LaunchedGateway {
  url: string;
  mcpUrl: string;
  proc: ChildProcess;
  /** stdout and stderr lines (stderr prefixed with "[stderr] "). */
  logs: string[];
  /** Raw stdout bytes as received, for byte-level assertions. */
  stdout(): string;
  /** SIGTERM to the gateway alone (it closes its upstreams and flushes), wait for its exit, then clear its group. */
  stop(): Promise<void>;
  /** SIGKILL to the gateway process alone, like `kill -9 PID`; resolves once it is gone. */
  kill9(): Promise<void>;
}

function exitOf(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => proc.once('exit', () => r()));
}

function killGroup(proc: ChildProcess, sig: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, sig);
  } catch {
    /* already gone */
  }
}

/** Start `switchyard serve` on the home (port chosen at run time) and wait for its "listening" line. */
export async function launch(home: GatewayHome, opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<LaunchedGateway> {
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--config', home.configPath, '--servers', home.serversDir, '--agents', home.agentsDir, '--data', home.dataDir],
    { cwd: REPO_ROOT, env: { ...process.env, LOG_LEVEL: 'debug', LOG_FORMAT: 'json', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  mine.add(proc);
  const logs: string[] = [];
  let raw = '';
  let url: string | undefined;
  let onListening: ((u: string) => void) | undefined;
  onOutputLines(
    proc,
    (line, stream) => {
      logs.push(stream === 'stderr' ? `[stderr] ${line}` : line);
      if (!url && line.includes('"msg":"listening"')) {
        try {
          url = (JSON.parse(line) as { url: string }).url;
          onListening?.(url);
        } catch {
          /* not the line we want */
        }
      }
    },
    (chunk, stream) => {
      if (stream === 'stdout') raw += chunk;
    },
  );
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway did not print "listening" within ${timeoutMs} ms:\n${logs.join('\n')}`)), timeoutMs);
      onListening = (u) => {
        clearTimeout(timer);
        resolve(u);
      };
      if (url) onListening(url);
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited (${sig ?? code}) before listening:\n${logs.join('\n')}`));
      });
    });
  } catch (err) {
    killGroup(proc, 'SIGKILL');
    await exitOf(proc);
    mine.delete(proc);
    throw err;
  }
  const gatewayUrl = url;
  let stopping: Promise<void> | undefined;
  return {
    url: gatewayUrl,
    mcpUrl: `${gatewayUrl}/mcp`,
    proc,
    logs,
    stdout: () => raw,
    stop: () =>
      (stopping ??= (async () => {
        const exited = exitOf(proc);
        proc.kill('SIGTERM');
        const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
        killGroup(proc, 'SIGKILL');
        mine.delete(proc);
      })()),
    kill9: () =>
      (stopping ??= (async () => {
        const exited = exitOf(proc);
        proc.kill('SIGKILL');
        await exited;
        // Its stdio upstreams notice their closed stdin and exit; make sure of it.
        killGroup(proc, 'SIGKILL');
        mine.delete(proc);
      })()),
  };
}

/** Kill every gateway this harness launched (call in afterAll, alongside stopAll()). */
export async function stopLaunched(): Promise<void> {
  await Promise.allSettled([...mine].map((p) => killTree(p, 3000)));
  mine.clear();
}

/** The afterAll of the harness suites: stopAll() (clients, gateway.ts processes, scratch dirs), then stopLaunched(). */
export async function stopEverything(): Promise<void> {
  await stopAll();
  await stopLaunched();
}

// ---- admin API and metrics ------------------------------------------------------------------------------

export interface AdminAnswer<T> {
  status: number;
  body: T;
}

/** GET (or POST with `method`) an admin API path such as "/workflows?agent=local"; the body parsed as JSON. */
export async function admin<T = Record<string, unknown>>(baseUrl: string, path: string, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<AdminAnswer<T>> {
  const res = await fetch(`${baseUrl}/admin/api${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* leave as text */
  }
  return { status: res.status, body: parsed as T };
}

export interface AuditRecordView {
  id: number;
  time: string;
  workflowId: string;
  step: number;
  agent: string;
  server: string | null;
  tool: string;
  args: Record<string, unknown> | null;
  outcome: string;
  reason: string | null;
  durationMs: number;
}

/** Every audit record (newest first), following nextCursor. */
export async function allAudit(baseUrl: string, query = ''): Promise<AuditRecordView[]> {
  const out: AuditRecordView[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const sep = query ? '&' : '';
    const q: string = `?${query}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { status, body } = await admin<{ records: AuditRecordView[]; nextCursor: string | null }>(baseUrl, `/audit${q}`);
    if (status !== 200) throw new Error(`GET /audit${q} answered ${status}: ${JSON.stringify(body)}`);
    out.push(...body.records);
    cursor = body.nextCursor;
    if (!cursor) return out;
  }
  throw new Error('audit paging did not end');
}

/** The workflow id of the session that made the call whose `text` argument was `marker`. */
export async function workflowOfMarker(baseUrl: string, marker: string): Promise<string> {
  const rec = (await allAudit(baseUrl)).find((r) => r.args?.text === marker);
  if (!rec) throw new Error(`no audit record with text ${marker}`);
  return rec.workflowId;
}

export async function metricsText(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Value of one Prometheus sample whose labels include all of `labels` (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf('}');
    const labelText = line.slice(name.length + 1, close);
    const have = new Map([...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(line.slice(close + 1).trim());
  }
  return total;
}

// ---- calls ----------------------------------------------------------------------------------------------

export type CallOutcome =
  | { ok: true; result: Record<string, unknown>; ms: number }
  | { ok: false; code: number; message: string; data: Record<string, unknown>; ms: number };

/** tools/call through an SDK client, as a value: a JSON-RPC error becomes {ok: false, code, data}. */
export async function call(client: Client, name: string, args: Record<string, unknown> = {}, opts: { timeoutMs?: number } = {}): Promise<CallOutcome> {
  const t0 = performance.now();
  try {
    const result = (await client.callTool({ name, arguments: args }, undefined, { timeout: opts.timeoutMs ?? 60_000 })) as Record<string, unknown>;
    return { ok: true, result, ms: performance.now() - t0 };
  } catch (err) {
    const e = err as { code?: unknown; message?: string; data?: unknown };
    return {
      ok: false,
      code: typeof e.code === 'number' ? e.code : NaN,
      message: e.message ?? String(err),
      data: (e.data && typeof e.data === 'object' ? e.data : {}) as Record<string, unknown>,
      ms: performance.now() - t0,
    };
  }
}

/** The refusal of a call that must have been refused (throws when it succeeded). */
export function refusalOf(o: CallOutcome): { code: number; data: Record<string, unknown>; message: string } {
  if (o.ok) throw new Error(`expected a refusal, got a result: ${JSON.stringify(o.result)}`);
  return { code: o.code, data: o.data, message: o.message };
}

/** A workflow as GET /admin/api/workflows/{id} and its state transitions answer it (the fields the limits suites read). */
export interface WorkflowView {
  id: string;
  state: string;
  why: string | null;
}

/** tools/call requests the upstream fixture recorded, optionally only those for `tool`. */
export function upstreamCalls(statsFile: string, tool?: string): StatLine[] {
  return readStats(statsFile).filter((l) => l.kind === 'request' && l.method === 'tools/call' && (tool === undefined || l.params?.name === tool));
}

/** tools/call requests the upstream received whose `text` argument was `text`. */
export function upstreamCallsWithText(statsFile: string, text: string): StatLine[] {
  return upstreamCalls(statsFile).filter((l) => (l.params?.arguments as Record<string, unknown> | undefined)?.text === text);
}

// ---- the CLI --------------------------------------------------------------------------------------------

export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export { readStats, type StatLine };

/**
 * End-to-end harness: a real gateway process over a temp config dir, the feature fixture over HTTP/SSE, SDK
 * clients wired to it, and polling with a deadline (never sleeps as synchronization).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type ClientCapabilities,
  type CreateMessageRequest,
  type CreateMessageResult,
  type ElicitRequest,
  type ElicitResult,
  type CallToolResult,
  type ListRootsResult,
  type Progress,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'bin', 'switchyard.js');
export const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'feature-server.mjs');
export const EVERYTHING = 'node_modules/@modelcontextprotocol/server-everything/dist/index.js';
export const MEMORY = 'node_modules/@modelcontextprotocol/server-memory/dist/index.js';
export const FILESYSTEM = 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js';

/** Every process the harness started, so `stopAll()` in afterAll leaves nothing behind. */
const live = new Set<ChildProcess>();
const scratchDirs = new Set<string>();

export function requireBuild(): void {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli.js'))) {
    throw new Error(`dist/cli.js is missing: build first with \`npx tsc -p tsconfig.json\` (npm test runs it as pretest). Repo: ${REPO_ROOT}`);
  }
}

/** A temp directory removed by stopAll(). */
export function scratch(prefix = 'switchyard-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.add(dir);
  return dir;
}

/**
 * A `switchyard stdio` home in a temp folder with these servers.d manifests (file stem → manifest): the folder
 * and the CLI arguments that point the gateway at it, for StdioClientTransport.
 */
export function stdioHome(servers: Record<string, Record<string, unknown>>, prefix = 'switchyard-stdio-'): { dir: string; args: string[] } {
  const dir = scratch(prefix);
  for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
  for (const [name, manifest] of Object.entries(servers)) writeFileSync(join(dir, 'servers.d', `${name}.yaml`), toYaml(manifest));
  writeFileSync(join(dir, 'gateway.yaml'), '{}\n');
  return { dir, args: [CLI, 'stdio', '--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')] };
}

// ---- polling --------------------------------------------------------------------------------------------

/** Poll `fn` until it returns a truthy value (or stops throwing), or fail after `timeoutMs` with the last error. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${opts.what ?? 'condition'}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

// ---- processes ------------------------------------------------------------------------------------------

/** Start a process in its own process group (so its children die with it), capturing output lines. */
function spawnTracked(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; command?: string; baseEnv?: NodeJS.ProcessEnv },
): { proc: ChildProcess; lines: string[]; onLine: (fn: (line: string, stream: 'stdout' | 'stderr') => void) => void } {
  const proc = spawn(opts.command ?? process.execPath, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...(opts.baseEnv ?? process.env), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const lines: string[] = [];
  const listeners: Array<(line: string, stream: 'stdout' | 'stderr') => void> = [];
  onOutputLines(proc, (line, stream) => {
    lines.push(stream === 'stderr' ? `[stderr] ${line}` : line);
    for (const fn of listeners) fn(line, stream);
  });
  return { proc, lines, onLine: (fn) => listeners.push(fn) };
}

/** Split a child's stdout and stderr into non-empty lines as they arrive; `onChunk` sees each raw chunk first. */
export function onOutputLines(
  proc: ChildProcess,
  onLine: (line: string, stream: 'stdout' | 'stderr') => void,
  onChunk?: (chunk: string, stream: 'stdout' | 'stderr') => void,
): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    let buf = '';
    proc[stream]!.setEncoding('utf8');
    proc[stream]!.on('data', (chunk: string) => {
      onChunk?.(chunk, stream);
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) onLine(line, stream);
      }
    });
  }
}

/** SIGTERM the whole process group, then SIGKILL after `graceMs`; resolves once the leader exited. */
export async function killTree(proc: ChildProcess, graceMs = 3000): Promise<void> {
  const pid = proc.pid;
  if (pid === undefined) return;
  const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => proc.once('exit', () => r()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      /* group already gone */
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // Children of the group (stdio upstreams) that outlive the leader.
  signal('SIGKILL');
  live.delete(proc);
}

function waitForLine(
  spawned: ReturnType<typeof spawnTracked>,
  match: (line: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${what}: no ready line within ${timeoutMs} ms. Output:\n${spawned.lines.join('\n')}`));
    }, timeoutMs);
    const found = spawned.lines.find(match);
    if (found) {
      clearTimeout(timer);
      resolve(found);
      return;
    }
    spawned.onLine((line) => {
      if (match(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    spawned.proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${sig ?? code}) before it was ready. Output:\n${spawned.lines.join('\n')}`));
    });
  });
}

// ---- the gateway ----------------------------------------------------------------------------------------

export type Manifest = Record<string, unknown> | string;

export interface GatewayOptions {
  /** servers.d files: key = server name (or a file name ending in .yaml/.yml/.json); objects are serialized, strings written as is. */
  servers: Record<string, Manifest>;
  agents?: Record<string, Manifest>;
  /** gateway.yaml contents (object or raw text). */
  gatewayYaml?: Record<string, unknown> | string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /** Reuse the directory (config and data) of an earlier gateway: a restart keeps its database. */
  dir?: string;
}

export interface RunningGateway {
  url: string;
  mcpUrl: string;
  dir: string;
  serversDir: string;
  proc: ChildProcess;
  logs: string[];
  /** Parsed pino lines (non-JSON lines skipped). */
  logRecords(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
  writeServer(name: string, manifest: Manifest): string;
  removeServer(name: string): void;
  serverUrl(name: string): string;
}

function fileNameFor(key: string): string {
  return /\.(ya?ml|json)$/.test(key) ? key : `${key}.yaml`;
}

function serialize(file: string, value: Manifest): string {
  if (typeof value === 'string') return value;
  return file.endsWith('.json') ? JSON.stringify(value, null, 2) : toYaml(value);
}

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  requireBuild();
  const dir = opts.dir ?? scratch('switchyard-gw-');
  const serversDir = join(dir, 'servers.d');
  const agentsDir = join(dir, 'agents.d');
  const dataDir = join(dir, 'data');
  for (const d of [serversDir, agentsDir, dataDir]) mkdirSync(d, { recursive: true });
  const configPath = join(dir, 'gateway.yaml');
  const gy = opts.gatewayYaml ?? {};
  writeFileSync(configPath, typeof gy === 'string' ? gy : Object.keys(gy).length ? toYaml(gy) : '{}\n');

  const writeInto = (folder: string, key: string, value: Manifest): string => {
    const file = join(folder, fileNameFor(key));
    writeFileSync(file, serialize(file, value));
    return file;
  };
  for (const [k, v] of Object.entries(opts.servers)) writeInto(serversDir, k, v);
  for (const [k, v] of Object.entries(opts.agents ?? {})) writeInto(agentsDir, k, v);

  const spawned = spawnTracked(
    [CLI, 'serve', '--port', '0', '--config', configPath, '--servers', serversDir, '--agents', agentsDir, '--data', dataDir],
    { env: { LOG_LEVEL: 'debug', ...opts.env } },
  );
  let line: string;
  try {
    line = await waitForLine(spawned, (l) => l.includes('"msg":"listening"'), opts.startTimeoutMs ?? 20_000, 'gateway');
  } catch (err) {
    await killTree(spawned.proc);
    throw err;
  }
  const url = (JSON.parse(line) as { url: string }).url;
  let stopping: Promise<void> | undefined;
  return {
    url,
    mcpUrl: `${url}/mcp`,
    dir,
    serversDir,
    proc: spawned.proc,
    logs: spawned.lines,
    logRecords: () =>
      spawned.lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    stop: () => (stopping ??= killTree(spawned.proc)),
    writeServer: (name, manifest) => writeInto(serversDir, name, manifest),
    removeServer: (name) => unlinkSync(join(serversDir, fileNameFor(name))),
    serverUrl: (name) => `${url}/servers/${name}/mcp`,
  };
}

// ---- processes (Linux /proc) ---------------------------------------------------------------------------

/** Pids of the live child processes of `pid` (its upstream servers, for a gateway). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Resident set size of a process in KiB, from /proc/<pid>/status. */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

// ---- the feature fixture over HTTP / SSE ----------------------------------------------------------------

export interface RunningFixture {
  /** Endpoint URL (…/mcp for http, …/sse for sse). */
  url: string;
  proc: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

export async function startFixture(mode: 'http' | 'sse', args: string[] = []): Promise<RunningFixture> {
  const spawned = spawnTracked([FIXTURE, `--${mode}`, '--port', '0', ...args], {});
  let line: string;
  try {
    line = await waitForLine(spawned, (l) => l.startsWith('listening '), 15_000, `fixture (${mode})`);
  } catch (err) {
    await killTree(spawned.proc);
    throw err;
  }
  return { url: line.slice('listening '.length).trim(), proc: spawned.proc, logs: spawned.lines, stop: () => killTree(spawned.proc) };
}

/** A stdio manifest running the feature fixture. */
export function fixtureManifest(extra: Record<string, unknown> = {}, args: string[] = []): Record<string, unknown> {
  return { command: 'node', args: ['test/fixtures/feature-server.mjs', ...args], ...extra };
}

// ---- stats ----------------------------------------------------------------------------------------------

export interface StatLine {
  kind: 'request' | 'notification' | 'event' | 'http';
  method: string;
  id?: string | number;
  params?: Record<string, unknown> & { name?: string; _meta?: Record<string, unknown> };
  headers?: Record<string, string>;
  session: string | null;
  status?: number;
  tool?: string;
  time: number;
}

export function readStats(file: string): StatLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StatLine);
}

/** Poll the stats file until one of its lines matches `match`. */
export function waitForStat(file: string, match: (line: StatLine) => boolean, opts: { timeoutMs?: number; what?: string } = {}): Promise<boolean> {
  return waitFor(() => readStats(file).some(match), opts);
}

// ---- SDK clients ----------------------------------------------------------------------------------------

export interface ClientHandlers {
  sampling?: (req: CreateMessageRequest) => CreateMessageResult | Promise<CreateMessageResult>;
  elicitation?: (req: ElicitRequest) => ElicitResult | Promise<ElicitResult>;
  roots?: () => ListRootsResult | Promise<ListRootsResult>;
}

const openClients = new Set<Client>();

/** An SDK Client over Streamable HTTP. Capabilities follow the handlers given unless stated. */
export async function connectClient(
  url: string,
  opts: { name?: string; capabilities?: ClientCapabilities; handlers?: ClientHandlers; headers?: Record<string, string> } = {},
): Promise<Client> {
  const h = opts.handlers ?? {};
  const capabilities: ClientCapabilities = opts.capabilities ?? {
    ...(h.sampling ? { sampling: {} } : {}),
    ...(h.elicitation ? { elicitation: { form: {} } } : {}),
    ...(h.roots ? { roots: { listChanged: true } } : {}),
  };
  const client = new Client({ name: opts.name ?? 'e2e-client', version: '1.0.0' }, { capabilities });
  if (h.sampling) client.setRequestHandler(CreateMessageRequestSchema, (req) => h.sampling!(req));
  if (h.elicitation) client.setRequestHandler(ElicitRequestSchema, (req) => h.elicitation!(req));
  if (h.roots) client.setRequestHandler(ListRootsRequestSchema, () => h.roots!());
  const transport = new StreamableHTTPClientTransport(new URL(url), opts.headers ? { requestInit: { headers: opts.headers } } : undefined);
  await client.connect(transport);
  openClients.add(client);
  client.onclose = () => openClients.delete(client);
  return client;
}

// ---- tool results and lists ----------------------------------------------------------------------------

/** The text of a tool result's first content block ('' when there is none or it is not text). */
export function textOf(result: unknown): string {
  const c = (result as CallToolResult).content?.[0];
  return c && c.type === 'text' ? c.text : '';
}

/** textOf() parsed as JSON. */
export const jsonOf = <T = Record<string, unknown>>(result: unknown): T => JSON.parse(textOf(result)) as T;

/** What the feature fixture's whoami tool answers about the upstream session it serves. */
export interface Whoami {
  pid: number;
  serverName: string;
  transport: string;
  sessionId: string;
  whoamiCalls: number;
  counter: number;
  clientInfo: { name: string; version: string };
  clientCapabilities: Record<string, unknown>;
}

/** Call `{server}__whoami` (a feature fixture behind the gateway) and parse its answer. */
export async function whoami(c: Client, server: string): Promise<Whoami> {
  return jsonOf<Whoami>(await c.callTool({ name: `${server}__whoami`, arguments: {} }));
}

/** Every tool the client is offered, following nextCursor (for at most `maxPages` pages). */
export async function allTools(c: Client, maxPages = Infinity): Promise<Tool[]> {
  const out: Tool[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const page = await c.listTools(cursor ? { cursor } : {});
    out.push(...page.tools);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return out;
}

const progressTaps = new WeakMap<Client, Map<string, Progress[]>>();
let progressTokens = 0;

/**
 * Progress notifications per token, read off the client's transport as they arrive. The SDK hands a notification
 * to onprogress a microtask after reading it but settles a response at once, so a progress notification that
 * arrives in the same chunk as its response (a busy host coalesces them) never reaches onprogress.
 */
function progressTap(c: Client): Map<string, Progress[]> {
  const known = progressTaps.get(c);
  if (known) return known;
  const transport = c.transport;
  const next = transport?.onmessage;
  if (!transport || !next) throw new Error('callWithProgress needs a connected client; call connect() first.');
  const tap = new Map<string, Progress[]>();
  transport.onmessage = (message, extra) => {
    if ('method' in message && message.method === 'notifications/progress' && message.params) {
      const { progressToken, ...progress } = message.params as Progress & { progressToken: string | number };
      tap.get(String(progressToken))?.push(progress);
    }
    next.call(transport, message, extra);
  };
  progressTaps.set(c, tap);
  return tap;
}

/** tools/call with a progress token: the result and every progress notification that came before it. */
export async function callWithProgress(c: Client, name: string, args: Record<string, unknown>): Promise<{ result: CallToolResult; progress: Progress[] }> {
  const tap = progressTap(c);
  const progressToken = `progress-${++progressTokens}`;
  const progress: Progress[] = [];
  tap.set(progressToken, progress);
  try {
    const result = await c.request({ method: 'tools/call', params: { name, arguments: args, _meta: { progressToken } } }, CallToolResultSchema);
    return { result, progress };
  } finally {
    tap.delete(progressToken);
  }
}

/** The names of allTools(). */
export async function toolNames(c: Client): Promise<string[]> {
  return (await allTools(c)).map((t) => t.name);
}

// ---- raw HTTP -------------------------------------------------------------------------------------------

export const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** The headers of a raw request on an initialized session. */
export function sessionHeaders(sid: string): Record<string, string> {
  return { ...JSON_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
}

/** POST one JSON-RPC message on an existing session over raw fetch; the answer is left unread. */
export function rawPost(mcpUrl: string, sid: string, message: Record<string, unknown>): Promise<Response> {
  return fetch(mcpUrl, { method: 'POST', headers: sessionHeaders(sid), body: JSON.stringify(message) });
}

/** Parse a POST answer that may be JSON or SSE; returns every JSON-RPC message in it. */
export async function readRpcMessages(res: Response): Promise<Array<Record<string, unknown>>> {
  const text = await res.text();
  if (!text) return [];
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .filter(Boolean)
      .map((d) => JSON.parse(d) as Record<string, unknown>);
  }
  return [JSON.parse(text) as Record<string, unknown>];
}

/** The initialize request a raw client sends. */
export function initializeMessage(capabilities: Record<string, unknown> = {}): Record<string, unknown> {
  return { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'raw', version: '0' } } };
}

/** initialize + notifications/initialized over raw fetch; returns the session id. */
export async function rawSession(mcpUrl: string, capabilities: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(mcpUrl, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(initializeMessage(capabilities)),
  });
  if (res.status !== 200) throw new Error(`initialize answered ${res.status}: ${await res.text()}`);
  const sid = res.headers.get('mcp-session-id');
  await res.text();
  if (!sid) throw new Error('initialize answered without Mcp-Session-Id');
  const ack = await rawPost(mcpUrl, sid, { jsonrpc: '2.0', method: 'notifications/initialized' });
  await ack.text();
  return sid;
}

/** One JSON-RPC request on an existing session over raw fetch; returns the final response message. */
export async function rawRequest(mcpUrl: string, sid: string, method: string, params: Record<string, unknown> = {}, id: number | string = 2): Promise<Record<string, unknown>> {
  const res = await rawPost(mcpUrl, sid, { jsonrpc: '2.0', id, method, params });
  const msgs = await readRpcMessages(res);
  const final = msgs.find((m) => m.id === id && ('result' in m || 'error' in m));
  if (!final) throw new Error(`no response to ${method} (HTTP ${res.status}): ${JSON.stringify(msgs)}`);
  return final;
}

// ---- teardown -------------------------------------------------------------------------------------------

/** Close every client, kill every process the harness started, remove scratch dirs. Call in afterAll. */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...openClients].map((c) => c.close()));
  openClients.clear();
  await Promise.allSettled([...live].map((p) => killTree(p)));
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
  scratchDirs.clear();
}

// ---- other commands -------------------------------------------------------------------------------------

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion, tracked so stopAll() ends it if a test fails first (e.g. `node bin/switchyard.js`, git, npm). */
export function runCommand(command: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; baseEnv?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const spawned = spawnTracked(args, { ...opts, command });
  let stdout = '';
  let stderr = '';
  onOutputLines(spawned.proc, () => {}, (chunk, stream) => {
    if (stream === 'stdout') stdout += chunk;
    else stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    spawned.proc.once('error', reject);
    spawned.proc.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Start a long-running command (e.g. `npm start`) and resolve with its first output line that `match` accepts. */
export async function startCommand(
  command: string,
  args: string[],
  match: (line: string) => boolean,
  opts: { cwd?: string; env?: Record<string, string>; baseEnv?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ line: string; proc: ChildProcess; logs: string[]; stop(): Promise<void> }> {
  const spawned = spawnTracked(args, { cwd: opts.cwd, env: opts.env, baseEnv: opts.baseEnv, command });
  try {
    const line = await waitForLine(spawned, match, opts.timeoutMs ?? 30_000, command);
    return { line, proc: spawned.proc, logs: spawned.lines, stop: () => killTree(spawned.proc) };
  } catch (err) {
    await killTree(spawned.proc);
    throw err;
  }
}

// Session lifecycle: upstream sessions open lazily and only for servers the caller may see, sessions are capped per
// agent and expire when idle, a down upstream is skipped at once and comes back, required servers are connected by
// the gateway itself, the handshake has its own timeout, list changes and log messages reach only whom they concern.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoggingMessageNotificationSchema, McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  childPids,
  connectClient,
  fixtureManifest,
  initializeMessage,
  JSON_HEADERS,
  jsonOf,
  readStats,
  scratch,
  startGateway,
  stopAll,
  toolNames,
  waitFor,
  whoami,
  type RunningGateway,
} from '../helpers/gateway.js';

const dir = scratch('switchyard-sessions-');
const stats = (name: string): string => join(dir, `${name}.jsonl`);
const startCount = (): number => (existsSync(starts) ? readFileSync(starts, 'utf8').split('\n').filter(Boolean).length : 0);
const flag = join(dir, 'flaky-may-start');
const starts = join(dir, 'flaky-starts.log');

const keys = { nothing: 'k-nothing', fxonly: 'k-fxonly', capped: 'k-capped', logA: 'k-log-a', logB: 'k-log-b', outsider: 'k-outsider', all: 'k-all', flakyonly: 'k-flaky' };
const sha = (k: string): string => `sha256:${createHash('sha256').update(k).digest('hex')}`;
const agent = (id: string, key: string, allow: string[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id,
  credentials: { apiKeys: [sha(key)] },
  tools: { allow },
  ...extra,
});
const as = (key: string): { headers: Record<string, string> } => ({ headers: { 'x-api-key': key } });

/** A stdio server that starts only once `flag` exists (appending to `starts` each attempt), then runs the fixture. */
const FLAKY = `const fs = require('node:fs'); fs.appendFileSync(process.env.STARTS, 'start\\n'); if (!fs.existsSync(process.env.FLAG)) process.exit(3); import(require('node:path').resolve('test/fixtures/feature-server.mjs'));`;
/** The fixture after a delay: slow to start, quick to answer. */
const SLOW_START = `setTimeout(() => import(require('node:path').resolve('test/fixtures/feature-server.mjs')), 1500);`;
/** A raw stdio server announcing tools/list_changed right after its own initialize (as some SDK servers do). */
const EAGER_NOTIFIER = `
const rl = require('node:readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === 'initialize') send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: { listChanged: true } }, serverInfo: { name: 'eager', version: '1' } } });
  else if (m.method === 'notifications/initialized') send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  else if (m.method === 'tools/list') send({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'hello', inputSchema: { type: 'object' } }] } });
  else if (m.id !== undefined) send({ jsonrpc: '2.0', id: m.id, result: {} });
});`;

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway({
    servers: {
      fx: fixtureManifest({}, ['--stats-file', stats('fx')]),
      fy: fixtureManifest({}, ['--stats-file', stats('fy')]),
      fxs: fixtureManifest({ session: 'shared' }, ['--stats-file', stats('fxs')]),
      frl: fixtureManifest({}, ['--stats-file', stats('frl')]),
      fbrk: fixtureManifest({ breaker: { failures: 1, cooldownSeconds: 60 } }),
      eager: { command: 'node', args: ['-e', EAGER_NOTIFIER] },
      slowstart: { command: 'node', args: ['-e', SLOW_START], timeoutMs: 500 },
      slowconnect: { command: 'node', args: ['-e', SLOW_START], connectTimeoutMs: 300 },
      flaky: { command: 'node', args: ['-e', FLAKY], env: { FLAG: flag, STARTS: starts } },
    },
    agents: {
      nothing: agent('nothing', keys.nothing, []),
      fxonly: agent('fxonly', keys.fxonly, ['fx__*']),
      capped: agent('capped', keys.capped, ['fx__*'], { limits: { sessions: 3 } }),
      'log-a': agent('log-a', keys.logA, ['fxs__*']),
      'log-b': agent('log-b', keys.logB, ['fxs__*']),
      outsider: agent('outsider', keys.outsider, ['fx__*']),
      all: agent('all', keys.all, ['*']),
      flakyonly: agent('flakyonly', keys.flakyonly, ['flaky__*']),
    },
    // Upstreams start on first use here, several at once on a busy machine.
    gatewayYaml: { listTimeoutMs: 20_000, admin: { tokens: [sha(ADMIN_TOKEN)] } },
  });
}, 60_000);

afterAll(stopAll);

/** Per-client upstream sessions a client opened on a fixture server, by the client name it passed on. */
const upstreamInits = (server: string, clientName: string): number =>
  readStats(stats(server)).filter((s) => s.method === 'initialize' && (s.params as { clientInfo?: { name?: string } } | undefined)?.clientInfo?.name === clientName).length;

async function rawInitialize(key: string, path = '/mcp'): Promise<{ status: number; body: Record<string, any>; sid: string | null }> {
  const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-api-key': key }, body: JSON.stringify(initializeMessage()) });
  return { status: res.status, sid: res.headers.get('mcp-session-id'), body: (await res.json()) as Record<string, any> };
}

/** With API keys configured the admin API needs an admin token. */
const ADMIN_TOKEN = 'sessions-admin-token';

describe('lazy upstream sessions', () => {
  it('an agent allowed nothing starts no upstream process, neither at initialize nor when it lists', async () => {
    const c = await connectClient(gw.mcpUrl, { name: 'nothing-client', ...as(keys.nothing) });
    expect(await toolNames(c)).toEqual([]);
    expect((await c.listPrompts()).prompts).toEqual([]);
    expect(upstreamInits('fx', 'nothing-client') + upstreamInits('fy', 'nothing-client')).toBe(0);
    // The single-server view of a server it may not see is refused before any upstream starts.
    const single = await rawInitialize(keys.nothing, '/servers/fx/mcp');
    expect(single.status).toBe(403);
    expect(single.body.error).toMatchObject({ data: { reason: 'policy_denied' }, message: expect.stringContaining("nothing of server 'fx'") });
    await c.close();
  });

  it('opens an upstream session on first use, only for the servers the caller may see', async () => {
    const c = await connectClient(gw.mcpUrl, { name: 'lazy-client', ...as(keys.fxonly) });
    expect(upstreamInits('fx', 'lazy-client')).toBe(0);
    const names = await toolNames(c);
    expect(names).toContain('fx__echo');
    expect(names.some((n) => !n.startsWith('fx__'))).toBe(false);
    expect(upstreamInits('fx', 'lazy-client')).toBe(1);
    expect(upstreamInits('fy', 'lazy-client')).toBe(0);
    await c.close();
  });
});

describe('session caps', () => {
  it("refuses a session past the agent's limits.sessions with HTTP 429 and rate_limited, and admits one again after a DELETE", async () => {
    const open = [];
    for (let i = 0; i < 3; i++) {
      const r = await rawInitialize(keys.capped);
      expect(r.status).toBe(200);
      open.push(r.sid!);
    }
    const refused = await rawInitialize(keys.capped);
    expect(refused.status).toBe(429);
    expect(refused.sid).toBeNull();
    expect(refused.body.error).toMatchObject({ code: -32030, data: { reason: 'rate_limited', limit: 'sessions', max: 3, used: 3 } });
    expect(refused.body.error.message).toMatch(/limits\.sessions.*DELETE/);
    // Other agents are not affected.
    expect((await rawInitialize(keys.fxonly)).status).toBe(200);
    const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': open[0]!, 'x-api-key': keys.capped } });
    expect(del.status).toBeLessThan(300);
    expect((await rawInitialize(keys.capped)).status).toBe(200);
  });
});

/** Log messages a client receives, by their data. */
function collectLogs(c: Client): string[] {
  const got: string[] = [];
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void got.push(String(n.params.data)));
  return got;
}

function countListChanged(c: Client): { n: number } {
  const seen = { n: 0 };
  c.setNotificationHandler(ToolListChangedNotificationSchema, () => void seen.n++);
  return seen;
}

describe('shared upstream: log messages and levels', () => {
  it("a log message during agent A's call reaches only A, not an agent without rights on the server", async () => {
    const a = await connectClient(gw.mcpUrl, { name: 'log-a', ...as(keys.logA) });
    const c = await connectClient(gw.mcpUrl, { name: 'outsider', ...as(keys.outsider) });
    const aLogs = collectLogs(a);
    const cLogs = collectLogs(c);
    const cChanged = countListChanged(c);
    await c.listTools();
    const r = await a.callTool({ name: 'fxs__log', arguments: { level: 'warning', message: 'from-a' } });
    expect(jsonOf(r)).toMatchObject({ sent: true });
    await waitFor(() => aLogs.includes('from-a'), { what: 'A to get its own log message' });
    // A later notification on C's own stream: anything leaked before it would have arrived first.
    await c.callTool({ name: 'fx__change_tools', arguments: {} });
    await waitFor(() => cChanged.n > 0, { what: 'list_changed on C' });
    expect(cLogs).toEqual([]);
    await Promise.all([a.close(), c.close()]);
  });

  it("one client's logging/setLevel on a shared upstream does not change what another client gets", async () => {
    const a = await connectClient(gw.mcpUrl, { name: 'log-a2', ...as(keys.logA) });
    const b = await connectClient(gw.mcpUrl, { name: 'log-b', ...as(keys.logB) });
    const bLogs = collectLogs(b);
    const bChanged = countListChanged(b);
    await b.listTools();
    await b.setLoggingLevel('error');
    // A never set a level: it still gets info messages although B asked for errors only.
    const r = await a.callTool({ name: 'fxs__log', arguments: { level: 'info', message: 'info-for-a' } });
    expect(jsonOf(r)).toMatchObject({ sent: true });
    await a.callTool({ name: 'fxs__change_tools', arguments: {} });
    await waitFor(() => bChanged.n > 0, { what: 'list_changed on B' });
    expect(bLogs).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('list changes', () => {
  it('an upstream list_changed sent right after its own initialize is not passed on', async () => {
    const c = await connectClient(gw.mcpUrl, { name: 'eager-client', ...as(keys.all) });
    const changed = countListChanged(c);
    const names = await toolNames(c);
    expect(names).toContain('eager__hello');
    await c.callTool({ name: 'fx__change_tools', arguments: {} });
    await waitFor(() => changed.n > 0, { what: 'the real list_changed' });
    // The fx change arrived; the eager server's start-up announcement never did.
    await c.callTool({ name: 'fx__whoami', arguments: {} });
    expect(changed.n).toBe(1);
    await c.close();
  });

  it('a reload that changes only timeoutMs keeps the upstream session and announces nothing', async () => {
    const c = await connectClient(gw.mcpUrl, { name: 'reload-client', ...as(keys.all) });
    const changed = countListChanged(c);
    await c.listTools();
    const before = await whoami(c, 'frl');
    gw.writeServer('frl', fixtureManifest({ timeoutMs: 45_000 }, ['--stats-file', stats('frl')]));
    await waitFor(() => gw.logRecords().some((r) => String(r.msg).startsWith('servers reloaded') && (r.changed as string[] | undefined)?.includes('frl')), { what: 'the reload of frl' });
    expect((await whoami(c, 'frl')).sessionId).toBe(before.sessionId);
    await c.callTool({ name: 'frl__change_tools', arguments: {} });
    await waitFor(() => changed.n > 0, { what: 'the list_changed of frl__change_tools' });
    await c.callTool({ name: 'frl__whoami', arguments: {} });
    expect(changed.n).toBe(1);
    await c.close();
  });
});

describe('upstream health', () => {
  it('a required server added while running is connected by the gateway and /readyz turns 200 without any client', async () => {
    gw.writeServer('req', fixtureManifest({ required: true }));
    const ready = await waitFor(async () => {
      const res = await fetch(`${gw.url}/readyz`);
      const body = (await res.json()) as { servers: Record<string, { up: boolean }> };
      return res.status === 200 && body.servers.req?.up ? body : undefined;
    }, { timeoutMs: 15_000, what: '/readyz 200 with req up' });
    expect(ready.servers.req).toMatchObject({ up: true, required: true });
  });

  it('a down upstream is skipped at once by every new session, and comes back into lists once it is up', async () => {
    await waitFor(async () => {
      const res = await fetch(`${gw.url}/admin/api/servers`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await res.json()) as { servers: Array<{ name: string; up: boolean; lastError?: string }> };
      const flaky = body.servers.find((s) => s.name === 'flaky');
      return flaky && !flaky.up && flaky.lastError ? true : undefined;
    }, { timeoutMs: 15_000, what: 'flaky known down' });
    const watcher = await connectClient(gw.mcpUrl, { name: 'flaky-watcher', ...as(keys.flakyonly) });
    const changed = countListChanged(watcher);
    expect(await toolNames(watcher)).not.toContain('flaky__echo');
    const startsBefore = startCount();
    const sessions = 8;
    for (let i = 0; i < sessions; i++) {
      const c = await connectClient(gw.mcpUrl, { name: `flaky-${i}`, ...as(keys.flakyonly) });
      const t0 = Date.now();
      await c.listPrompts();
      await c.listResources();
      expect(Date.now() - t0).toBeLessThan(500);
      await c.close();
    }
    // Background rechecks only (with backoff), not one start per session and list.
    expect(startCount() - startsBefore).toBeLessThan(sessions);
    writeFileSync(flag, 'yes');
    await waitFor(() => changed.n > 0, { timeoutMs: 15_000, what: 'list_changed once flaky is back' });
    expect(await toolNames(watcher)).toContain('flaky__echo');
    await watcher.close();
  });

  it('the handshake has its own connectTimeoutMs: a server slow to start works with a short per-call timeoutMs', async () => {
    const c = await connectClient(gw.mcpUrl, { name: 'slow-client', ...as(keys.all) });
    const r = await c.callTool({ name: 'slowstart__echo', arguments: { text: 'late but fine' } });
    expect(r.isError).toBeFalsy();
    const e = await c.callTool({ name: 'slowconnect__echo', arguments: { text: 'x' } }).then((x) => x, (x: unknown) => x);
    expect(e).toBeInstanceOf(McpError);
    expect((e as McpError).data).toMatchObject({ reason: 'upstream_unavailable' });
    expect((e as McpError).message).toContain('connectTimeoutMs');
    await c.close();
  });

  it('the breaker threshold and cooldown come from the manifest', async () => {
    const c = await connectClient(gw.mcpUrl, { name: 'breaker-client', ...as(keys.all) });
    await c.callTool({ name: 'fbrk__crash', arguments: {} }).then((x) => x, (x: unknown) => x);
    const e = await c.callTool({ name: 'fbrk__echo', arguments: { text: 'x' } }).then((x) => x, (x: unknown) => x);
    expect(e).toBeInstanceOf(McpError);
    expect((e as McpError).data).toMatchObject({ reason: 'upstream_unavailable', breaker: 'open' });
    expect(((e as McpError).data as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThan(30);
    await c.close();
  });
});

describe('workflows', () => {
  it('a session is not listed as a workflow until it makes its first step', async () => {
    const listed = async (): Promise<number> => {
      const res = await fetch(`${gw.url}/admin/api/workflows?agent=fxonly&state=active`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { workflows: unknown[] };
      return body.workflows.length;
    };
    const c = await connectClient(gw.mcpUrl, { name: 'wf-client', ...as(keys.fxonly) });
    await c.listTools();
    const before = await listed();
    await c.callTool({ name: 'fx__echo', arguments: { text: 'a step' } });
    expect(await listed()).toBe(before + 1);
    await c.close();
  });
});

describe('idle expiry', () => {
  let idle: RunningGateway;
  beforeAll(async () => {
    idle = await startGateway({
      servers: { fx: fixtureManifest({ idleSeconds: 1 }), slow: { command: 'node', args: ['-e', SLOW_START], idleSeconds: 1 } },
      gatewayYaml: { sessions: { idleSeconds: 1 }, listTimeoutMs: 500 },
    });
  }, 60_000);

  it('a session silent for sessions.idleSeconds is closed, and so is a per-client upstream session unused for its idleSeconds', async () => {
    const res = await fetch(idle.mcpUrl, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(initializeMessage()) });
    const sid = res.headers.get('mcp-session-id')!;
    await res.text();
    await waitFor(() => idle.logRecords().some((r) => r.msg === 'session ended' && r.session === sid && r.why === 'idle'), { timeoutMs: 15_000, what: 'the idle session to be closed' });
    const r = await fetch(idle.mcpUrl, { method: 'POST', headers: { ...JSON_HEADERS, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) });
    await r.text();
    expect(r.status).toBe(404);

    // An SDK client keeps its GET stream open, so its session stays; its idle upstream process goes.
    const c = await connectClient(idle.mcpUrl);
    await c.callTool({ name: 'fx__whoami', arguments: {} });
    await waitFor(() => (childPids(idle.proc.pid!).length === 0 ? true : undefined), { timeoutMs: 15_000, what: 'the idle upstream process to exit' });
    expect((await c.callTool({ name: 'fx__echo', arguments: { text: 'again' } })).isError).toBeFalsy();
    await c.close();
  });

  it('a list answered while a server was still starting is followed by list_changed once it is ready', async () => {
    const c = await connectClient(idle.mcpUrl);
    // fx up first: on a busy host its own start can outlast the list's 0.5 s, and its list_changed is not the one awaited.
    await c.callTool({ name: 'fx__echo', arguments: { text: 'up' } });
    const changed = countListChanged(c);
    expect(await toolNames(c)).not.toContain('slow__echo'); // it needs 1.5 s to start, the list waits 0.5 s
    // Each list_changed is followed by a list; one of them, once slow is ready, has its tools.
    let heard = 0;
    await waitFor(
      async () => {
        if (changed.n === heard) return undefined;
        heard = changed.n;
        return (await toolNames(c)).includes('slow__echo') ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'list_changed once slow is ready, and slow__echo in the list that follows' },
    );
    await c.close();
  });
});

// Upstream failures and transports: crashes become upstream_unavailable errors and the upstream restarts, an HTTP
// upstream re-initializes after 404, dead or hanging upstreams never stall lists, /readyz follows `required`,
// and the legacy HTTP+SSE transport works.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  callWithProgress,
  connectClient,
  fixtureManifest,
  jsonOf,
  readStats,
  scratch,
  startFixture,
  startGateway,
  stopAll,
  textOf,
  toolNames,
  waitFor,
  waitForStat,
  whoami,
  type RunningFixture,
  type RunningGateway,
} from '../helpers/gateway.js';

const dir = scratch('switchyard-upstreams-');
const statsHttp = join(dir, 'http.jsonl');
const statsSse = join(dir, 'sse.jsonl');
let httpFixture: RunningFixture;
let sseFixture: RunningFixture;
let gw: RunningGateway;

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function readyz(url: string): Promise<{ status: number; body: { servers: Record<string, { up: boolean; required: boolean }> } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { servers: Record<string, { up: boolean; required: boolean }> } };
}

beforeAll(async () => {
  [httpFixture, sseFixture] = await Promise.all([startFixture('http', ['--stats-file', statsHttp]), startFixture('sse', ['--stats-file', statsSse])]);
  gw = await startGateway({
    servers: {
      fx: fixtureManifest(),
      fxh: { transport: 'http', url: httpFixture.url, required: true },
      legacy: { transport: 'sse', url: sseFixture.url },
      fxt: fixtureManifest({ timeoutMs: 1000 }),
    },
  });
}, 60_000);

afterAll(stopAll);

describe('crash', () => {
  it('a crashing upstream yields upstream_unavailable (never a success) and the same session keeps working', async () => {
    const c = await connectClient(gw.mcpUrl);
    const before = await whoami(c, 'fx');
    const err = await c.callTool({ name: 'fx__crash', arguments: {} }).then(
      (r) => r,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).data).toMatchObject({ reason: 'upstream_unavailable', server: 'fx' });
    // The upstream is restarted with backoff; the client's session survives.
    const after = await waitFor(
      async () => {
        const r = await c.callTool({ name: 'fx__whoami', arguments: {} });
        return jsonOf<{ pid: number }>(r);
      },
      { timeoutMs: 15_000, what: 'the restarted upstream' },
    );
    expect(after.pid).not.toBe(before.pid);
    expect(textOf(await c.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } }))).toBe('5');
    await c.close();
  });

  it('calls in flight when the upstream dies fail with upstream_unavailable', async () => {
    // `sample` is not marked read-only or idempotent, so the gateway must not retry it: it waits on our sampling
    // handler (never answered here) while another call crashes the upstream.
    let asked!: () => void;
    const samplingAsked = new Promise<void>((r) => (asked = r));
    const c = await connectClient(gw.mcpUrl, {
      handlers: {
        sampling: () => {
          asked();
          return new Promise(() => {});
        },
      },
    });
    const pending = c.callTool({ name: 'fx__sample', arguments: { prompt: 'never answered' } }).then((r) => r, (e: unknown) => e);
    await samplingAsked;
    const crash = await c.callTool({ name: 'fx__crash', arguments: {} }).then((r) => r, (e: unknown) => e);
    const inFlight = await pending;
    for (const e of [crash, inFlight]) {
      expect(e).toBeInstanceOf(McpError);
      expect((e as McpError).data).toMatchObject({ reason: 'upstream_unavailable' });
    }
    await c.close();
  });
});

describe('HTTP upstream session expiry', () => {
  it('re-initializes after the upstream answers 404 for its session and resends the call', async () => {
    const c = await connectClient(gw.mcpUrl);
    const first = await whoami(c, 'fxh');
    await c.callTool({ name: 'fxh__counter_inc', arguments: { by: 2 } });
    const expired = await c.callTool({ name: 'fxh__expire_session', arguments: {} });
    expect(expired.isError).toBeFalsy();
    const second = await waitFor(
      async () => {
        const w = await whoami(c, 'fxh');
        return w.sessionId !== first.sessionId ? w : undefined;
      },
      { timeoutMs: 10_000, what: 'a new upstream session' },
    );
    expect(second.counter).toBe(0); // a fresh session upstream
    const inits = readStats(statsHttp).filter((s) => s.method === 'initialize');
    expect(inits.some((s) => s.session === null || s.session === undefined || s.session !== first.sessionId)).toBe(true);
    // The new session carries the client's identity and capabilities like the first one.
    const initAfter = readStats(statsHttp).filter((s) => s.method === 'initialize').at(-1)!;
    expect((initAfter.params as { clientInfo?: { name?: string } }).clientInfo?.name).toBe('e2e-client');
    await c.close();
  });
});

describe('HTTP upstream standalone stream', () => {
  it('notifications on the upstream GET stream reach the client, also after its upstream session was re-initialized', async () => {
    const a = await connectClient(gw.mcpUrl);
    const b = await connectClient(gw.mcpUrl);
    let bChanged = 0;
    b.setNotificationHandler(ToolListChangedNotificationSchema, () => void bChanged++);
    const bSession = (await whoami(b, 'fxh')).sessionId;
    await a.callTool({ name: 'fxh__whoami', arguments: {} });
    // The gateway's upstream session for B has its GET stream open once the fixture logged it.
    await waitForStat(statsHttp, (s) => s.kind === 'http' && s.method === 'GET' && s.session === bSession, { timeoutMs: 5000, what: 'upstream GET stream for B' });
    await a.callTool({ name: 'fxh__change_tools', arguments: {} });
    await waitFor(() => bChanged > 0, { timeoutMs: 5000, what: 'list_changed on B from the upstream GET stream' });

    await b.callTool({ name: 'fxh__expire_session', arguments: {} });
    const renewed = await waitFor(async () => {
      const w = await whoami(b, 'fxh');
      return w.sessionId !== bSession ? w.sessionId : undefined;
    }, { timeoutMs: 10_000, what: 'B re-initialized upstream' });
    await waitForStat(statsHttp, (s) => s.kind === 'http' && s.method === 'GET' && s.session === renewed, { timeoutMs: 5000, what: 'upstream GET stream for the renewed session' });
    const before = bChanged;
    await a.callTool({ name: 'fxh__change_tools', arguments: {} });
    await waitFor(() => bChanged > before, { timeoutMs: 5000, what: 'list_changed on B after re-initialize' });
    await Promise.all([a.close(), b.close()]);
  });
});

describe('legacy HTTP+SSE upstream', () => {
  it('lists, calls, relays progress and sampling over SSE', async () => {
    const c = await connectClient(gw.mcpUrl, {
      handlers: { sampling: () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'sse answer' } }) },
    });
    const names = await toolNames(c);
    expect(names).toContain('legacy__echo');
    expect(textOf(await c.callTool({ name: 'legacy__echo', arguments: { text: 'over sse' } }))).toBe('over sse');
    const { result: r, progress } = await callWithProgress(c, 'legacy__slow', { ms: 300, steps: 3 });
    expect(textOf(r)).toBe('done after 3 steps');
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    expect(textOf(await c.callTool({ name: 'legacy__sample', arguments: { prompt: 'hi' } }))).toBe('sse answer');
    expect(readStats(statsSse).some((s) => s.method === 'tools/call' && s.params?.name === 'echo')).toBe(true);
    await c.close();
  });
});

describe('timeouts and large messages', () => {
  it('a call slower than timeoutMs fails with upstream_timeout; progress notifications keep it alive', async () => {
    const c = await connectClient(gw.mcpUrl);
    // 2.4 s in 8 steps with progress every 300 ms: never 1 s without news, so it completes.
    const { result: ok, progress } = await callWithProgress(c, 'fxt__slow', { ms: 2400, steps: 8 });
    expect(textOf(ok)).toBe('done after 8 steps');
    expect(progress).toHaveLength(8);
    // Without a progress token the same call is silent for 2.4 s: the gateway gives up after 1 s (and its retries).
    const t0 = Date.now();
    const err = await c.callTool({ name: 'fxt__slow', arguments: { ms: 2400, steps: 1 } }).then((r) => r, (e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).data).toMatchObject({ reason: 'upstream_timeout', server: 'fxt' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    await c.close();
  });

  for (const server of ['fx', 'fxh', 'legacy']) {
    it(`relays a 1 MB argument and result intact (${server})`, async () => {
      const c = await connectClient(gw.mcpUrl);
      const big = 'abcdefghij'.repeat(100_000) + 'é✓';
      const r = await c.callTool({ name: `${server}__echo`, arguments: { text: big } });
      expect(textOf(r)).toBe(big);
      await c.close();
    });
  }
});

describe('readiness', () => {
  it('/healthz is ok and /readyz is 200 while every required upstream is up', async () => {
    const h = await fetch(`${gw.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const r = await waitFor(async () => {
      const x = await readyz(gw.url);
      return x.body.servers.fxh?.up ? x : undefined;
    }, { timeoutMs: 10_000, what: 'fxh up in /readyz' });
    expect(r.status).toBe(200);
    expect(r.body.servers.fxh).toMatchObject({ up: true, required: true });
  });
});

describe('dead and hanging upstreams', () => {
  let dead: RunningGateway;
  let deadOptional: RunningGateway;

  beforeAll(async () => {
    const port = await closedPort();
    const servers = {
      fx: fixtureManifest(),
      dead: { command: 'node', args: ['-e', 'process.exit(3)'], timeoutMs: 30_000, required: true },
      nohttp: { transport: 'http', url: `http://127.0.0.1:${port}/mcp`, timeoutMs: 30_000 },
      hang: { command: 'node', args: ['-e', 'setInterval(() => {}, 1000)'], timeoutMs: 30_000 },
    };
    [dead, deadOptional] = await Promise.all([
      startGateway({ servers, gatewayYaml: { listTimeoutMs: 4000 } }),
      startGateway({ servers: { ...servers, dead: { ...servers.dead, required: false } }, gatewayYaml: { listTimeoutMs: 4000 } }),
    ]);
  }, 60_000);

  it('answers tools/list with the live servers well before the dead ones time out', async () => {
    const c = await connectClient(dead.mcpUrl);
    const t0 = Date.now();
    const names = await toolNames(c);
    expect(Date.now() - t0).toBeLessThan(8000); // the hanging server's 30 s timeout would be far longer
    expect(names).toContain('fx__echo');
    expect(names.some((n) => n.startsWith('dead__') || n.startsWith('nohttp__') || n.startsWith('hang__'))).toBe(false);
    // A second list is not slower: the dead servers are skipped again, not waited for.
    const t1 = Date.now();
    await c.listTools();
    expect(Date.now() - t1).toBeLessThan(8000);
    await c.close();
  });

  it('a call to a dead upstream is an upstream_unavailable error, not a success or a hang', async () => {
    const c = await connectClient(dead.mcpUrl);
    for (const name of ['dead__anything', 'nohttp__anything']) {
      const t0 = Date.now();
      const e = await c.callTool({ name, arguments: {} }).then((r) => r, (x: unknown) => x);
      expect(e).toBeInstanceOf(McpError);
      expect((e as McpError).data).toMatchObject({ reason: 'upstream_unavailable' });
      expect(Date.now() - t0).toBeLessThan(10_000);
    }
    await c.close();
  });

  it('/readyz is 503 while a required upstream is down, 200 when the dead one is optional', async () => {
    const down = await waitFor(async () => {
      const r = await readyz(dead.url);
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 10_000, what: '/readyz 503' });
    expect(down.body.servers.dead).toMatchObject({ up: false, required: true });
    const ok = await waitFor(async () => {
      const r = await readyz(deadOptional.url);
      return r.body.servers.dead && r.body.servers.dead.up === false && r.body.servers.nohttp?.up === false ? r : undefined;
    }, { timeoutMs: 10_000, what: 'probe results in /readyz' });
    expect(ok.status).toBe(200);
    expect(ok.body.servers.fx?.up).toBe(true);
  });

  it('logs a clear line naming the dead upstream', async () => {
    await waitFor(() => dead.logRecords().some((r) => r.server === 'dead' && r.level === 40 && String(r.msg).startsWith("upstream 'dead' could not start: ")), { timeoutMs: 10_000, what: 'start failure line for dead' });
  });
});

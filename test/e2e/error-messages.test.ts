// What agents, operators and unauthenticated callers are told when things go wrong: one cause, one sentence, one
// hint; an upstream that cannot start says why in one log line; credentials in manifest URLs, manifest paths and
// server names never reach public surfaces.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import {
  connectClient,
  fixtureManifest,
  JSON_HEADERS,
  initializeMessage,
  rawRequest,
  rawSession,
  startGateway,
  stopAll,
  textOf,
  waitFor,
  type RunningGateway,
} from '../helpers/gateway.js';

const SECRET = 'SEKRET-5d1f0a';
const CALLER_KEY = 'caller-key-0c7e1b55';
const HINT = 'The gateway reconnects with backoff; retry shortly.';

let gw: RunningGateway;
let authGw: RunningGateway;
let port: number;

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}

async function callError(c: Awaited<ReturnType<typeof connectClient>>, name: string, args: Record<string, unknown> = {}): Promise<McpError> {
  const e = await c.callTool({ name, arguments: args }).then((r) => r, (x: unknown) => x);
  expect(e).toBeInstanceOf(McpError);
  return e as McpError;
}

const warnLines = (g: RunningGateway, server: string) =>
  g.logRecords().filter((r) => r.server === server && r.level === 40 && String(r.msg).startsWith(`upstream '${server}' could not start: `));

beforeAll(async () => {
  port = await closedPort();
  [gw, authGw] = await Promise.all([
    startGateway({
      servers: {
        fx: fixtureManifest(),
        dead: { command: 'node', args: ['-e', "console.error('starting'); console.error('fatal: API_TOKEN is not set'); process.exit(1)"], required: true },
        nocmd: { command: 'no-such-command-9f2c' },
        secret: { transport: 'http', url: `http://user:pw-${SECRET}@127.0.0.1:${port}/mcp?api_key=${SECRET}&v=2` },
        nosse: { transport: 'sse', url: `http://127.0.0.1:${port}/sse?token=${SECRET}` },
      },
    }),
    startGateway({
      servers: { fx: fixtureManifest() },
      agents: { worker: { id: 'worker', credentials: { apiKeys: [`sha256:${createHash('sha256').update(CALLER_KEY).digest('hex')}`] }, tools: { allow: ['*'] } } },
    }),
  ]);
}, 60_000);

afterAll(stopAll);

describe('messages to agents', () => {
  it('an upstream that exits during the handshake: one cause, one hint, no nesting', async () => {
    const c = await connectClient(gw.mcpUrl);
    const e = await callError(c, 'dead__anything');
    expect(e.message).toBe(`MCP error -32030: Upstream 'dead' is unavailable: it exited with code 1. ${HINT}`);
    expect(e.data).toEqual({ reason: 'upstream_unavailable', server: 'dead', workflowId: expect.any(String) });
  });

  it('a refused connection is named as such, without the URL or its credentials (Streamable HTTP and legacy SSE)', async () => {
    const c = await connectClient(gw.mcpUrl);
    for (const server of ['secret', 'nosse']) {
      const e = await callError(c, `${server}__anything`);
      expect(e.message).toBe(`MCP error -32030: Upstream '${server}' is unavailable: connection refused (ECONNREFUSED). ${HINT}`);
      expect(JSON.stringify(e.data)).not.toContain(SECRET);
    }
  });

  it('initialize on /servers/{name}/mcp of a dead upstream says why once', async () => {
    const r = await fetch(gw.serverUrl('dead'), { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(initializeMessage()) });
    const body = (await r.json()) as { error: unknown };
    expect(body.error).toEqual({ code: -32030, message: `Upstream 'dead' is unavailable: it exited with code 1. ${HINT}`, data: { reason: 'upstream_unavailable', server: 'dead' } });
  });

  it('a missing command is named without the command line or the manifest path', async () => {
    const c = await connectClient(gw.mcpUrl);
    const e = await callError(c, 'nocmd__anything');
    expect(e.message).toBe(`MCP error -32030: Upstream 'nocmd' is unavailable: its command was not found. ${HINT}`);
  });

  it("relays an upstream's JSON-RPC error without a second 'MCP error' prefix", async () => {
    const c = await connectClient(gw.mcpUrl);
    const e = await callError(c, 'fx__throw_error');
    expect([e.code, e.message]).toEqual([-32603, 'MCP error -32603: fixture error']);
    const p = await c.getPrompt({ name: 'fx__greet', arguments: {} }).then((r) => r, (x: unknown) => x);
    expect((p as McpError).message).toBe('MCP error -32602: Missing required argument: name');
  });

  it('arguments that are not an object are -32602 with a sentence, for tools and prompts', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const cases: Array<[string, unknown, string]> = [
      ['tools/call', 'str', 'a string'],
      ['tools/call', [1, 2], 'an array'],
      ['tools/call', null, 'null'],
      ['prompts/get', 7, 'a number'],
    ];
    for (const [method, args, what] of cases) {
      const name = method === 'tools/call' ? 'fx__echo' : 'fx__greet';
      const res = await rawRequest(gw.mcpUrl, sid, method, { name, arguments: args });
      expect(res.error).toEqual({ code: -32602, message: `${method} params.arguments must be an object of named arguments, not ${what}.` });
    }
    // The upstream never saw them, and a good call still works.
    const ok = await rawRequest(gw.mcpUrl, sid, 'tools/call', { name: 'fx__echo', arguments: { text: 'hi' } });
    expect(textOf(ok.result)).toBe('hi');
  });

  it("an upstream's schema rejection is relayed as -32602 with one sentence, not -32603 with a raw issue list", async () => {
    const sid = await rawSession(gw.mcpUrl);
    const completion = await rawRequest(gw.mcpUrl, sid, 'completion/complete', { ref: { type: 'ref/prompt', name: 'fx__greet' }, argument: 'str' });
    expect(completion.error).toEqual({ code: -32602, message: 'Invalid params: params.argument: Invalid input: expected object, received string.' });
    const prompt = await rawRequest(gw.mcpUrl, sid, 'prompts/get', { name: 'fx__greet', arguments: { name: 5 } });
    expect(prompt.error).toEqual({ code: -32602, message: 'Invalid params: params.arguments.name: Invalid input: expected string, received number.' });
  });

  it('a missing name or uri is -32602 naming the field', async () => {
    const sid = await rawSession(gw.mcpUrl);
    expect((await rawRequest(gw.mcpUrl, sid, 'resources/read', {})).error).toEqual({ code: -32602, message: 'resources/read needs params.uri (a string).' });
    expect((await rawRequest(gw.mcpUrl, sid, 'tools/call', { name: 7 })).error).toEqual({ code: -32602, message: 'tools/call needs params.name (a string).' });
  });

  it('echoes at most 80 characters of an unknown name', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const long = 'x'.repeat(10_000);
    const tool = await rawRequest(gw.mcpUrl, sid, 'tools/call', { name: long, arguments: {} });
    expect(tool.error).toEqual({ code: -32602, message: `Unknown tool: ${'x'.repeat(80)}…` });
    const prompt = await rawRequest(gw.mcpUrl, sid, 'prompts/get', { name: `nosuch__${long}` });
    expect(prompt.error).toEqual({ code: -32602, message: `Unknown prompt: nosuch__${'x'.repeat(72)}…` });
    const resource = await rawRequest(gw.mcpUrl, sid, 'resources/read', { uri: `nosuch://${long}` });
    expect(resource.error).toEqual({ code: -32002, message: `Resource not found: nosuch://${'x'.repeat(71)}…`, data: { uri: `nosuch://${'x'.repeat(71)}…` } });
    const method = await rawRequest(gw.mcpUrl, sid, long, {});
    expect(method.error).toEqual({ code: -32601, message: `Method not found: ${'x'.repeat(80)}…` });
  });

  it('answers a long unknown name on a live server itself, capped, before the upstream sees it', async () => {
    const sid = await rawSession(gw.mcpUrl);
    // The gateway checks prompt names against the upstream's list; relayed upstream texts are capped too (unit-tested).
    const prompt = await rawRequest(gw.mcpUrl, sid, 'prompts/get', { name: `fx__${'x'.repeat(10_000)}` });
    expect(prompt.error).toEqual({ code: -32602, message: `Unknown prompt: fx__${'x'.repeat(76)}…` });
  });
});

describe('messages to operators', () => {
  it('an upstream whose child exits during the handshake: one WARN line with its last stderr lines', async () => {
    const file = join(gw.serversDir, 'dead.yaml');
    // The probe, each client's session and each call failed to start it: the same reason is logged at WARN once.
    const lines = await waitFor(() => (warnLines(gw, 'dead').length ? warnLines(gw, 'dead') : undefined), { timeoutMs: 15_000, what: 'start failure of dead' });
    expect(lines).toHaveLength(1);
    const line = lines[0];
    expect(line!.msg).toBe(`upstream 'dead' could not start: it exited with code 1; its last stderr lines: "starting" / "fatal: API_TOKEN is not set"; check ${file} \`command\` and \`args\``);
    expect(line!.cause).toBe('exited');
  });

  it('a command that does not exist: one WARN line naming it and the manifest field', async () => {
    const file = join(gw.serversDir, 'nocmd.yaml');
    const [line] = await waitFor(() => (warnLines(gw, 'nocmd').length ? warnLines(gw, 'nocmd') : undefined), { timeoutMs: 15_000, what: 'start failure of nocmd' });
    expect(line!.msg).toBe(`upstream 'nocmd' could not start: command 'no-such-command-9f2c' not found (ENOENT); check ${file} \`command\``);
  });

  it('an unreachable URL is logged with its credentials masked, and no log line at info or above holds them', async () => {
    const file = join(gw.serversDir, 'secret.yaml');
    const [line] = await waitFor(() => (warnLines(gw, 'secret').length ? warnLines(gw, 'secret') : undefined), { timeoutMs: 15_000, what: 'start failure of secret' });
    expect(line!.msg).toBe(`upstream 'secret' could not start: http://***@127.0.0.1:${port}/mcp?api_key=***&v=*** is unreachable: connection refused (ECONNREFUSED); check ${file} \`url\``);
    const leaks = gw.logRecords().filter((r) => Number(r.level) >= 30 && JSON.stringify(r).includes(SECRET));
    expect(leaks).toEqual([]);
  });

  it('the admin API has the reasons, with URLs masked', async () => {
    const res = await fetch(`${gw.url}/admin/api/servers`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const { servers } = JSON.parse(text) as { servers: Array<Record<string, unknown>> };
    const secret = servers.find((s) => s.name === 'secret')!;
    expect(secret).toMatchObject({ transport: 'http', up: false, required: false, url: `http://***@127.0.0.1:${port}/mcp?api_key=***&v=***`, source: join(gw.serversDir, 'secret.yaml') });
    expect(secret.lastError).toBe(`http://***@127.0.0.1:${port}/mcp?api_key=***&v=*** is unreachable: connection refused (ECONNREFUSED)`);
    const fx = servers.find((s) => s.name === 'fx');
    expect(fx).toMatchObject({ up: true });
    expect(fx).not.toHaveProperty('lastError');
  });
});

describe('public surfaces', () => {
  it('/readyz says only up and required per server: no error text, paths or URLs', async () => {
    const res = await waitFor(async () => {
      const r = await fetch(`${gw.url}/readyz`);
      const body = (await r.json()) as { servers: Record<string, { up: boolean }> };
      return body.servers.fx?.up && r.status === 503 ? { status: r.status, body } : undefined;
    }, { timeoutMs: 15_000, what: 'probes settled' });
    expect(res.body).toEqual({
      status: 'not ready',
      audit: { ok: true },
      servers: {
        fx: { up: true, required: false },
        dead: { up: false, required: true },
        nocmd: { up: false, required: false },
        secret: { up: false, required: false },
        nosse: { up: false, required: false },
      },
    });
  });

  it('/servers/{name}/mcp: unauthenticated callers get the same answer for known and unknown names', async () => {
    const ask = async (name: string) => {
      const r = await fetch(authGw.serverUrl(name), { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(initializeMessage()) });
      return { status: r.status, body: await r.text() };
    };
    const [known, unknown] = await Promise.all([ask('fx'), ask('nope')]);
    expect(known.status).toBe(401);
    expect(unknown).toEqual(known);
  });

  it('/servers/{unknown}/mcp for an authenticated caller is a 404 that lists nothing', async () => {
    for (const method of ['POST', 'GET'] as const) {
      const r = await fetch(authGw.serverUrl('nope'), {
        method,
        headers: { ...JSON_HEADERS, authorization: `Bearer ${CALLER_KEY}` },
        ...(method === 'POST' ? { body: JSON.stringify(initializeMessage()) } : {}),
      });
      expect(r.status).toBe(404);
      expect(await r.json()).toEqual({ error: 'not_found', message: 'No MCP endpoint at this path. MCP clients connect to /mcp.' });
    }
    const c = await connectClient(authGw.serverUrl('fx'), { headers: { authorization: `Bearer ${CALLER_KEY}` } });
    expect(textOf(await c.callTool({ name: 'echo', arguments: { text: 'ok' } }))).toBe('ok');
  });
});

describe('shutdown', () => {
  it('a stopping gateway does not warn that its upstreams will restart', async () => {
    const g = await startGateway({ servers: { fx: fixtureManifest(), fxs: fixtureManifest({ session: 'shared' }) } });
    const c = await connectClient(g.mcpUrl);
    expect(textOf(await c.callTool({ name: 'fx__echo', arguments: { text: 'a' } }))).toBe('a');
    expect(textOf(await c.callTool({ name: 'fxs__echo', arguments: { text: 'b' } }))).toBe('b');
    await g.stop();
    const records = g.logRecords();
    const from = records.findIndex((r) => r.msg === 'stopping');
    expect(from).toBeGreaterThan(0);
    expect(records.slice(from).filter((r) => Number(r.level) >= 40).map((r) => r.msg)).toEqual([]);
  });
});

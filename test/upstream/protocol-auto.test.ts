// `protocol: auto` (the http default): server/discover first; a 2026-07-28 answer decides, and whatever a legacy
// server says to an unknown method (a JSON-RPC error, HTTP 400/404/405, silence) falls back to initialize. Real
// sockets and processes: an in-test HTTP upstream per legacy answer, the v1 SDK feature server and the v2 fixture.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerManifest } from '../../src/config/types.js';
import { UpstreamError } from '../../src/upstream/errors.js';
import { StreamableHttpTransport } from '../../src/upstream/http.js';
import { wantedRevision } from '../../src/upstream/modern.js';
import { UpstreamSession, type SessionEvents } from '../../src/upstream/session.js';
import { StdioTransport } from '../../src/upstream/stdio.js';
import type { RpcNotification, RpcRequest } from '../../src/util/jsonrpc.js';
import { ROOT, startFixture, stopProcess, type Started } from '../helpers/started-process.js';

const log = pino({ level: 'silent' });
const init = { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: { name: 'auto-test', version: '1' } };

function manifest(over: Partial<ServerManifest>): ServerManifest {
  return {
    name: 'up',
    transport: 'http',
    env: {},
    args: [],
    headers: {},
    tools: { include: ['*'], exclude: [] },
    timeoutMs: 10_000,
    connectTimeoutMs: 10_000,
    idleSeconds: 600,
    breaker: { failures: 5, cooldownSeconds: 10 },
    session: 'per-client',
    required: false,
    source: { file: 'up.yaml', line: 1 },
    ...over,
  };
}

type DiscoverAnswer = 'rpc-error' | 'http-400' | 'http-404' | 'http-405' | 'silent' | 'http-500' | 'http-401' | 'modern';

interface Seen {
  method: string;
  version?: string;
  mcpMethod?: string;
  meta?: Record<string, unknown>;
}

/** An HTTP upstream that answers server/discover the way `answer` says and serves initialize + tools/call as a 2025-11-25 server. */
async function upstream(answer: DiscoverAnswer): Promise<{ url: string; seen: Seen[]; server: Server; listens: ServerResponse[]; listenClosed: Promise<void> }> {
  const seen: Seen[] = [];
  const listens: ServerResponse[] = [];
  let closedListen!: () => void;
  const listenClosed = new Promise<void>((r) => (closedListen = r));
  const server = createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const msg = JSON.parse(body) as RpcRequest;
      seen.push({ method: msg.method, version: req.headers['mcp-protocol-version'] as string | undefined, mcpMethod: req.headers['mcp-method'] as string | undefined, meta: msg.params?._meta as Record<string, unknown> | undefined });
      if (msg.id === undefined) return void res.writeHead(202).end();
      const json = (status: number, payload: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
      if (msg.method === 'server/discover') {
        switch (answer) {
          case 'rpc-error':
            return json(200, { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } });
          case 'http-400':
            // What the v1 SDK's stateful transport says to a request without a session.
            return json(400, { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: No valid session ID provided' } });
          case 'http-404':
            return void res.writeHead(404).end('not found');
          case 'http-405':
            return void res.writeHead(405).end();
          case 'http-500':
            return void res.writeHead(500).end('boom');
          case 'http-401':
            return void res.writeHead(401).end();
          case 'silent':
            return; // never answers
          case 'modern':
            return json(200, { jsonrpc: '2.0', id: msg.id, result: { supportedVersions: ['2026-07-28'], capabilities: { tools: { listChanged: true }, prompts: {} }, _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'modern-up', version: '2' } } } });
        }
      }
      if (msg.method === 'subscriptions/listen') {
        // Held open: the acknowledgement now, list changes whenever the test writes them.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: msg.params?.notifications } })}\n\n`);
        res.on('close', closedListen);
        listens.push(res);
        return;
      }
      if (msg.method === 'initialize') return json(200, { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'legacy-up', version: '1' } } });
      return json(200, { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: `ran ${msg.method}` }] } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`, seen, server, listens, listenClosed };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

async function connect(m: ServerManifest, events: SessionEvents = {}): Promise<UpstreamSession> {
  const s = new UpstreamSession(m, new StreamableHttpTransport(m, log), init, events, log);
  await s.connect();
  return s;
}

describe('protocol: auto towards HTTP upstreams', () => {
  it('is the default for http; stdio and sse initialize without probing', () => {
    expect(wantedRevision(manifest({}))).toBe('auto');
    expect(wantedRevision(manifest({ transport: 'stdio' }))).toBe('2025-11-25');
    expect(wantedRevision(manifest({ transport: 'sse' }))).toBe('2025-11-25');
    expect(wantedRevision(manifest({ protocol: '2025-11-25' }))).toBe('2025-11-25');
  });

  for (const answer of ['rpc-error', 'http-400', 'http-404', 'http-405'] as const) {
    it(`a legacy server answering the probe with ${answer} is initialized, and only its first session probes`, async () => {
      const up = await upstream(answer);
      const m = manifest({ url: up.url });
      try {
        const s = await connect(m);
        expect(s.protocolVersion).toBe('2025-11-25');
        expect(s.serverInfo).toEqual({ name: 'legacy-up', version: '1' });
        const res = await s.request('tools/call', { name: 'x' });
        expect(res.result).toEqual({ content: [{ type: 'text', text: 'ran tools/call' }] });
        // After the fallback nothing carries the 2026-07-28 version or envelope.
        const after = up.seen.slice(1);
        expect(up.seen[0]).toMatchObject({ method: 'server/discover', version: '2026-07-28', mcpMethod: 'server/discover' });
        expect(after.map((x) => x.method)).toEqual(['initialize', 'notifications/initialized', 'tools/call']);
        expect(after.find((x) => x.method === 'initialize')!.version).toBeUndefined();
        expect(after.find((x) => x.method === 'tools/call')).toMatchObject({ version: '2025-11-25', mcpMethod: undefined, meta: undefined });
        await s.close();
        // A second session of the same upstream goes straight to initialize.
        up.seen.length = 0;
        const again = await connect(m);
        expect(up.seen.map((x) => x.method)).toEqual(['initialize', 'notifications/initialized']);
        await again.close();
      } finally {
        await stop(up.server);
      }
    });
  }

  it('a server that never answers the probe is initialized after half the connect budget at most', async () => {
    const up = await upstream('silent');
    const m = manifest({ url: up.url, connectTimeoutMs: 2_000 });
    try {
      const started = Date.now();
      const s = await connect(m);
      const took = Date.now() - started;
      expect(s.protocolVersion).toBe('2025-11-25');
      expect(took).toBeGreaterThanOrEqual(1_000);
      expect(took).toBeLessThan(2_000);
      await s.close();
    } finally {
      await stop(up.server);
    }
  });

  it('a 2026-07-28 answer makes the session modern: no initialize, the envelope and headers on every request', async () => {
    const up = await upstream('modern');
    const m = manifest({ url: up.url });
    try {
      const s = await connect(m);
      expect(s.protocolVersion).toBe('2026-07-28');
      expect(s.serverInfo).toEqual({ name: 'modern-up', version: '2' });
      await s.request('tools/call', { name: 'x' });
      const calls = up.seen.filter((x) => x.method !== 'subscriptions/listen');
      expect(calls.map((x) => x.method)).toEqual(['server/discover', 'tools/call']);
      expect(calls[1]).toMatchObject({ version: '2026-07-28', mcpMethod: 'tools/call' });
      expect(calls[1]!.meta).toMatchObject({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } });
      await s.close();
      // A remembered modern verdict still asks server/discover (it is the handshake), never initialize.
      up.seen.length = 0;
      const again = await connect(m);
      expect(up.seen.map((x) => x.method).filter((x) => x !== 'subscriptions/listen')).toEqual(['server/discover']);
      await again.close();
    } finally {
      await stop(up.server);
    }
  });

  it('a modern session holds subscriptions/listen open for the kinds that change: its list changes reach the session, it is no call in flight, and closing ends it', async () => {
    const up = await upstream('modern');
    const heard: RpcNotification[] = [];
    let changed!: () => void;
    const arrived = new Promise<void>((r) => (changed = r));
    try {
      const s = await connect(manifest({ url: up.url }), {
        onNotification: (n) => {
          heard.push(n);
          if (n.method === 'notifications/tools/list_changed') changed();
        },
      });
      const deadline = Date.now() + 5_000;
      while (up.listens.length === 0 && Date.now() < deadline) await new Promise<void>((r) => setImmediate(r));
      expect(up.listens).toHaveLength(1);
      const listen = up.seen.find((x) => x.method === 'subscriptions/listen')!;
      expect(listen).toMatchObject({ version: '2026-07-28', mcpMethod: 'subscriptions/listen' });
      expect(s.inFlight).toBe(0);
      up.listens[0]!.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 'x' } } })}\n\n`);
      await arrived;
      // The acknowledgement is the stream's business, not the session's listeners'.
      expect(heard.map((n) => n.method)).toEqual(['notifications/tools/list_changed']);
      await s.close();
      await up.listenClosed;
    } finally {
      await stop(up.server);
    }
  });

  for (const [answer, status] of [['http-500', 500], ['http-401', 401]] as const) {
    it(`HTTP ${status} to the probe is reported as it is, not taken for a legacy server`, async () => {
      const up = await upstream(answer);
      try {
        const err = await connect(manifest({ url: up.url })).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(UpstreamError);
        expect((err as UpstreamError).code).toBe('http_status');
        expect((err as UpstreamError).message).toBe(`it answered HTTP ${status}`);
        expect(up.seen.map((x) => x.method)).toEqual(['server/discover']);
      } finally {
        await stop(up.server);
      }
    });
  }
});

describe('protocol: auto against real servers', () => {
  let legacy: Started | undefined;
  let modern: Started | undefined;

  beforeAll(async () => {
    [legacy, modern] = await Promise.all([
      startFixture([join(ROOT, 'test/fixtures/feature-server.mjs'), '--http', '--port', '0'], 'The feature server (v1 SDK, stateful HTTP)'),
      startFixture([join(ROOT, 'test/conformance-2026/fixture-server.mjs'), '--port', '0'], 'The 2026-07-28 fixture (v2 SDK)', join(ROOT, 'test/conformance-2026/node_modules/.bin/node')),
    ]);
  }, 40_000);

  afterAll(async () => {
    await Promise.all([stopProcess(legacy?.child), stopProcess(modern?.child)]);
  });

  it('the v1 SDK feature server falls back to initialize and serves calls; the probe costs one round trip', async () => {
    const m = manifest({ name: 'feat', url: legacy!.value });
    const t0 = performance.now();
    const s = await connect(m);
    const probed = performance.now() - t0;
    expect(s.protocolVersion).toBe('2025-11-25');
    const tools = await s.request('tools/list', undefined);
    expect((tools.result as { tools: Array<{ name: string }> }).tools.map((t) => t.name)).toContain('echo');
    await s.close();
    const t1 = performance.now();
    const again = await connect(m);
    const remembered = performance.now() - t1;
    await again.close();
    // A fresh manifest (as after a reload) probes again, now against a warm server: the probe's own cost.
    const t2 = performance.now();
    const reprobed = await connect({ ...m });
    const warmProbe = performance.now() - t2;
    expect(reprobed.protocolVersion).toBe('2025-11-25');
    await reprobed.close();
    console.log(`auto towards the v1 feature server: first connect ${probed.toFixed(1)} ms (probe + initialize), remembered ${remembered.toFixed(1)} ms (initialize only), warm probe + initialize ${warmProbe.toFixed(1)} ms`);
    expect(probed).toBeLessThan(1_000);
  });

  it('the v2 SDK fixture is spoken to in 2026-07-28', async () => {
    const s = await connect(manifest({ name: 'conformance', url: modern!.value }));
    expect(s.protocolVersion).toBe('2026-07-28');
    const tools = await s.request('tools/list', undefined);
    expect((tools.result as { tools: Array<{ name: string }> }).tools.length).toBeGreaterThan(0);
    await s.close();
  });

  it('a stdio server (server-everything) is initialized with no probe', async () => {
    const m = manifest({ name: 'everything', transport: 'stdio', command: process.execPath, args: [join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'], cwd: ROOT });
    const t = new StdioTransport(m, log);
    const sent: string[] = [];
    const send = t.send.bind(t);
    t.send = (msg, options) => {
      if ('method' in msg) sent.push(msg.method);
      return send(msg, options);
    };
    const s = new UpstreamSession(m, t, init, {}, log);
    await s.connect();
    expect(sent[0]).toBe('initialize');
    expect(sent).not.toContain('server/discover');
    expect(s.protocolVersion).toBe('2025-11-25');
    await s.close();
  });
});

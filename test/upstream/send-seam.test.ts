// The transport seam: per-message data (headers, signal, step, related request) travels with each send, and the
// handshake is bounded by connectTimeoutMs, not by the calls' timeoutMs. In-process, with an in-memory transport.
import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import type { ServerManifest } from '../../src/config/types.js';
import type { Step } from '../../src/gateway/types.js';
import { UpstreamError } from '../../src/upstream/errors.js';
import { UpstreamSession } from '../../src/upstream/session.js';
import { withTraceContext } from '../../src/upstream/stdio.js';
import type { SendOptions, UpstreamTransport } from '../../src/upstream/transport.js';
import type { RpcMessage, RpcRequest } from '../../src/util/jsonrpc.js';

const log = pino({ level: 'silent' });
const init = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'seam', version: '1' } };

function manifest(over: Partial<ServerManifest> = {}): ServerManifest {
  return {
    name: 'mem',
    transport: 'http',
    url: 'http://127.0.0.1:9/mcp',
    args: [],
    env: {},
    headers: {},
    tools: { include: [], exclude: [] },
    timeoutMs: 60_000,
    connectTimeoutMs: 30_000,
    idleSeconds: 600,
    breaker: { failures: 5, cooldownSeconds: 10 },
    session: 'per-client',
    required: false,
    // A 2025-11-25 upstream named as such: these cases are about initialize (auto's probe has its own file).
    protocol: '2025-11-25',
    source: { file: 'mem.yaml', line: 1 },
    ...over,
  };
}

/** An upstream in memory: records every send with its options and answers initialize unless told not to. */
class MemoryTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  readonly sent: Array<{ message: RpcMessage; options?: SendOptions }> = [];
  protocolVersion?: string;
  serverStreams = 0;

  constructor(private readonly answersInitialize = true) {}

  async start(): Promise<void> {}

  async send(message: RpcMessage, options?: SendOptions): Promise<void> {
    this.sent.push({ message, options });
    const req = message as RpcRequest;
    if (req.method === 'initialize' && req.id !== undefined && this.answersInitialize) {
      queueMicrotask(() => this.onmessage?.({ jsonrpc: '2.0', id: req.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'mem', version: '1' } } }));
    }
  }

  setProtocolVersion(version: string | undefined): void {
    this.protocolVersion = version;
  }

  openServerStream(): void {
    this.serverStreams++;
  }

  async close(): Promise<void> {
    this.onclose?.();
  }

  lastRequest(method: string): { message: RpcRequest; options?: SendOptions } {
    const found = [...this.sent].reverse().find((s) => (s.message as RpcRequest).method === method);
    if (!found) throw new Error(`no ${method} was sent; sent: ${this.sent.map((s) => (s.message as RpcRequest).method).join(', ')}`);
    return found as { message: RpcRequest; options?: SendOptions };
  }
}

const step = { kind: 'tools/call', workflowId: 'wf-1', stepNo: 3 } as unknown as Step;

afterEach(() => {
  vi.useRealTimers();
});

describe('send(message, options) carries per-message data', () => {
  it('a call hands its headers, signal and step to the transport with the request itself', async () => {
    const t = new MemoryTransport();
    const s = new UpstreamSession(manifest(), t, init, {}, log);
    await s.connect();
    expect(t.protocolVersion).toBe('2025-11-25');
    expect(t.serverStreams).toBe(1);
    const controller = new AbortController();
    const answer = s.request('tools/call', { name: 'add', arguments: { a: 1 } }, { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, signal: controller.signal, step });
    const sent = t.lastRequest('tools/call');
    expect(sent.options?.headers).toEqual({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(sent.options?.signal).toBe(controller.signal);
    expect(sent.options?.step).toBe(step);
    t.onmessage?.({ jsonrpc: '2.0', id: sent.message.id, result: { content: [] } });
    expect((await answer).result).toEqual({ content: [] });
  });

  it('a cancellation names the request it cancels as relatedRequest', async () => {
    const t = new MemoryTransport();
    const s = new UpstreamSession(manifest(), t, init, {}, log);
    await s.connect();
    const controller = new AbortController();
    const answer = s.request('tools/call', { name: 'slow' }, { signal: controller.signal });
    const id = t.lastRequest('tools/call').message.id;
    controller.abort('user gave up');
    expect((await answer).error?.message).toContain('user gave up');
    const cancel = t.sent.find((x) => (x.message as RpcRequest).method === 'notifications/cancelled');
    expect(cancel?.options?.relatedRequest).toBe(id);
    expect((cancel?.message as RpcRequest).params).toMatchObject({ requestId: id });
  });

  it('the answer to a server-to-client request names that request as relatedRequest', async () => {
    const t = new MemoryTransport();
    const s = new UpstreamSession(manifest(), t, init, {}, log);
    await s.connect();
    t.onmessage?.({ jsonrpc: '2.0', id: 'srv-1', method: 'ping' });
    const pong = t.sent.find((x) => (x.message as { id?: unknown }).id === 'srv-1');
    expect(pong?.message).toEqual({ jsonrpc: '2.0', id: 'srv-1', result: {} });
    expect(pong?.options?.relatedRequest).toBe('srv-1');
  });
});

describe('stdio carries trace context in _meta', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('adds traceparent to a request, keeping its other _meta fields and leaving the original untouched', () => {
    const req: RpcRequest = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', _meta: { progressToken: 'p1' } } };
    const out = withTraceContext(req, tp) as RpcRequest;
    expect(out.params).toEqual({ name: 'add', _meta: { progressToken: 'p1', traceparent: tp } });
    expect(req.params?._meta).toEqual({ progressToken: 'p1' });
  });

  it('leaves notifications, and requests without trace context, as they are', () => {
    const note: RpcMessage = { jsonrpc: '2.0', method: 'notifications/initialized' };
    const req: RpcRequest = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    expect(withTraceContext(note, tp)).toBe(note);
    expect(withTraceContext(req, undefined)).toBe(req);
    expect((withTraceContext(req, tp) as RpcRequest).params).toEqual({ _meta: { traceparent: tp } });
  });
});

describe('the handshake has its own timeout', () => {
  it('an upstream that never answers initialize fails within connectTimeoutMs with a clear error, although timeoutMs is far longer', async () => {
    vi.useFakeTimers();
    const t = new MemoryTransport(false);
    const s = new UpstreamSession(manifest({ connectTimeoutMs: 2_000, timeoutMs: 600_000 }), t, init, {}, log);
    const outcome = s.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    await vi.advanceTimersByTimeAsync(1_999);
    expect(t.lastRequest('initialize')).toBeDefined();
    let settled = false;
    void outcome.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).code).toBe('timeout');
    expect((err as UpstreamError).message).toMatch(/within 2000 ms/);
    expect((err as UpstreamError).info.field).toBe('`connectTimeoutMs`');
    // initialize is never cancelled (MCP lifecycle), so nothing else went out.
    expect(t.sent.map((x) => (x.message as RpcRequest).method)).toEqual(['initialize']);
  });

  it('after the handshake a call is bounded by timeoutMs, not connectTimeoutMs', async () => {
    vi.useFakeTimers();
    const t = new MemoryTransport();
    const s = new UpstreamSession(manifest({ connectTimeoutMs: 1_000, timeoutMs: 5_000 }), t, init, {}, log);
    await s.connect();
    const answer = s.request('tools/call', { name: 'slow' });
    await vi.advanceTimersByTimeAsync(1_500);
    expect(s.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(3_500);
    const res = await answer;
    expect(res.error?.message).toMatch(/within 5000 ms/);
    expect((res.error?.data as { reason?: string }).reason).toBe('upstream_timeout');
  });
});

describe('Streamable HTTP sends per-message headers with that message only', () => {
  it('a call’s trace header goes on its POST and not on the next one', async () => {
    const { createServer } = await import('node:http');
    const { StreamableHttpTransport } = await import('../../src/upstream/http.js');
    const seen: Array<{ method: string; traceparent?: string; version?: string }> = [];
    const server = createServer((req, res) => {
      // No GET stream here, and DELETE ends the session: only POSTs carry messages.
      if (req.method !== 'POST') return void res.writeHead(req.method === 'GET' ? 405 : 200).end();
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const msg = JSON.parse(body) as RpcRequest;
        seen.push({ method: msg.method, traceparent: req.headers.traceparent as string | undefined, version: req.headers['mcp-protocol-version'] as string | undefined });
        if (msg.id === undefined) return void res.writeHead(202).end();
        const result = msg.method === 'initialize' ? { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'h', version: '1' } } : { content: [] };
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sid-1' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const m = manifest({ url: `http://127.0.0.1:${port}/mcp` });
    const s = new UpstreamSession(m, new StreamableHttpTransport(m, log), init, {}, log);
    try {
      await s.connect();
      const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      expect((await s.request('tools/call', { name: 'a' }, { headers: { traceparent: tp } })).result).toEqual({ content: [] });
      expect((await s.request('tools/call', { name: 'b' })).result).toEqual({ content: [] });
      const calls = seen.filter((x) => x.method === 'tools/call');
      expect(calls).toEqual([
        { method: 'tools/call', traceparent: tp, version: '2025-06-18' },
        { method: 'tools/call', traceparent: undefined, version: '2025-06-18' },
      ]);
    } finally {
      await s.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

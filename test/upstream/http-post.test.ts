// The Streamable HTTP connector's POST against a scripted server: the headers each request carries as the session
// learns its id and revision, and answers (SSE or JSON) relayed with the upstream's own text.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { ServerManifest } from '../../src/config/types.js';
import { StreamableHttpTransport } from '../../src/upstream/http.js';
import type { RpcMessage, RpcResponse } from '../../src/util/jsonrpc.js';
import { wireWithId } from '../../src/util/raw-response.js';

const log = pino({ level: 'silent' });
const servers: Server[] = [];
const transports: StreamableHttpTransport[] = [];
afterEach(async () => {
  for (const t of transports.splice(0)) await t.close();
  for (const s of servers.splice(0)) s.close();
});

/** A server that records each POST's headers and answers with `answer(body, n)` (status, content type, text). */
async function scripted(answer: (body: { id?: number }, n: number) => { type: string; text: string; sid?: string }) {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    let text = '';
    req.on('data', (c: Buffer) => (text += c));
    req.on('end', () => {
      seen.push(req.headers);
      const a = answer(JSON.parse(text) as { id?: number }, seen.length);
      res.writeHead(200, { 'content-type': a.type, ...(a.sid ? { 'mcp-session-id': a.sid } : {}) });
      res.end(a.text);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const m = { name: 'up', transport: 'http', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, headers: { 'x-team': 'perf' } } as unknown as ServerManifest;
  const t = new StreamableHttpTransport(m, log);
  transports.push(t);
  const got: RpcMessage[] = [];
  t.onmessage = (msg) => got.push(msg);
  return { t, seen, got };
}

const until = async (ok: () => boolean) => {
  while (!ok()) await new Promise((r) => setImmediate(r));
};

describe('Streamable HTTP POST', () => {
  it('sends the session id and revision once known, and per-message headers only with their message', async () => {
    const { t, seen, got } = await scripted((body) => ({ type: 'application/json', text: JSON.stringify({ jsonrpc: '2.0', id: body.id, result: {} }), sid: 'sess-1' }));
    await t.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    t.setProtocolVersion('2025-11-25');
    await t.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: {} }, { headers: { traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01' } });
    await t.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: {} });
    t.setProtocolVersion('2025-06-18');
    await t.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: {} });
    await until(() => got.length === 4);
    expect(seen[0]!['mcp-session-id']).toBeUndefined();
    expect(seen[0]!['mcp-protocol-version']).toBeUndefined();
    expect(seen.map((h) => h['x-team'])).toEqual(['perf', 'perf', 'perf', 'perf']);
    expect(seen.map((h) => h['content-type'])).toEqual(Array(4).fill('application/json'));
    expect(seen.map((h) => h.accept)).toEqual(Array(4).fill('application/json, text/event-stream'));
    expect(seen.slice(1).map((h) => h['mcp-session-id'])).toEqual(['sess-1', 'sess-1', 'sess-1']);
    expect(seen.slice(1).map((h) => h['mcp-protocol-version'])).toEqual(['2025-11-25', '2025-11-25', '2025-06-18']);
    expect(seen.map((h) => h.traceparent)).toEqual([undefined, '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01', undefined, undefined]);
    expect(seen.map((h) => h['content-length'])).toEqual(seen.map((_, i) => String(JSON.stringify({ jsonrpc: '2.0', id: i + 1, method: i ? 'tools/call' : 'initialize', params: {} }).length)));
  });

  it('keeps the text of an answer, SSE or JSON, so it is relayed with only the id swapped', async () => {
    const { t, got } = await scripted((body, n) =>
      n === 1
        ? { type: 'text/event-stream', text: `id: e1\nevent: message\ndata: {"result":{"n":1.50},"jsonrpc":"2.0","id":${body.id}}\n\n` }
        : { type: 'application/json', text: `{"result":{"e":1e2},"jsonrpc":"2.0","id":${body.id}}` },
    );
    await t.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: {} });
    await until(() => got.length === 1);
    await t.send({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: {} });
    await until(() => got.length === 2);
    const [sse, json] = got as RpcResponse[];
    expect(sse!.result).toEqual({ n: 1.5 });
    expect(wireWithId({ ...sse!, id: 'c1' }, true)).toBe('{"result":{"n":1.50},"jsonrpc":"2.0","id":"c1"}');
    expect(wireWithId({ ...json!, id: 9 })).toBe('{"result":{"e":1e2},"jsonrpc":"2.0","id":9}');
  });
});

// Every bad input to /mcp is answered with the right HTTP status and JSON-RPC error, over raw HTTP.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSON_HEADERS, fixtureManifest, initializeMessage, rawRequest, rawSession, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';

let gw: RunningGateway;
const MAX_BODY = 4096;

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): Record<string, unknown> & { error?: { code: number; message: string } };
}

/** A raw HTTP request with full control of headers (fetch cannot set Host). Reads the whole answer. */
function raw(method: string, path: string, headers: Record<string, string>, body?: string | Buffer, opts: { chunked?: boolean } = {}): Promise<RawAnswer> {
  const u = new URL(path, gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as ReturnType<RawAnswer['json']> });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined && opts.chunked) {
      // Write in pieces without a content-length, so the limit must be enforced while reading.
      const buf = Buffer.from(body);
      for (let i = 0; i < buf.length; i += 1024) req.write(buf.subarray(i, i + 1024));
      req.end();
    } else req.end(body);
  });
}

const post = (body: string | Buffer, headers: Record<string, string> = {}, opts: { chunked?: boolean } = {}) =>
  raw('POST', '/mcp', { ...JSON_HEADERS, ...(opts.chunked ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...headers }, body, opts);

const initBody = JSON.stringify(initializeMessage());

beforeAll(async () => {
  gw = await startGateway({ servers: { fx: fixtureManifest() }, gatewayYaml: { maxBodyBytes: MAX_BODY } });
}, 60_000);

afterAll(stopAll);

describe('malformed requests', () => {
  it('malformed JSON → HTTP 400 with -32700', async () => {
    const r = await post('{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(r.status).toBe(400);
    expect(r.json().error?.code).toBe(-32700);
  });

  it('not a JSON-RPC message → HTTP 400 with -32600', async () => {
    for (const body of ['{"hello": "world"}', '{"jsonrpc": "1.0", "id": 1, "method": "ping"}', '"just a string"', '{"jsonrpc":"2.0","id":{},"method":"ping"}']) {
      const r = await post(body);
      expect(r.status, body).toBe(400);
      expect(r.json().error?.code, body).toBe(-32600);
    }
  });

  it('a JSON-RPC batch is refused with 400', async () => {
    const r = await post(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]));
    expect(r.status).toBe(400);
    expect(r.json().error).toBeDefined();
  });

  it('wrong Content-Type → 415', async () => {
    const r = await post(initBody, { 'content-type': 'text/plain' });
    expect(r.status).toBe(415);
    expect(r.json().error).toBeDefined();
  });

  it('Accept without text/event-stream → 406', async () => {
    const r = await post(initBody, { accept: 'application/json' });
    expect(r.status).toBe(406);
    expect(r.json().error).toBeDefined();
  });

  it('body over maxBodyBytes → 413 (declared length and chunked)', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(MAX_BODY * 2) } });
    const r = await post(big);
    expect(r.status).toBe(413);
    expect(r.json().error).toBeDefined();
    const c = await post(big, {}, { chunked: true });
    expect(c.status).toBe(413);
    expect(c.json().error).toBeDefined();
    // The gateway still serves normal requests afterwards.
    const ok = await post(initBody);
    expect(ok.status).toBe(200);
  });

  it('an unsupported HTTP method → 405', async () => {
    const r = await raw('PUT', '/mcp', JSON_HEADERS, '{}');
    expect(r.status).toBe(405);
  });
});

describe('sessions', () => {
  it('initialize answers with Mcp-Session-Id and a supported protocol version', async () => {
    const r = await post(initBody);
    expect(r.status).toBe(200);
    expect(r.headers['mcp-session-id']).toBeTruthy();
    expect(r.json()).toMatchObject({ id: 1, result: { protocolVersion: '2025-11-25', serverInfo: { name: 'switchyard' } } });
    const old = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'old', version: '0' } } }));
    expect(old.json()).toMatchObject({ result: { protocolVersion: '2024-11-05' } });
  });

  it('missing session id → 400', async () => {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }));
    expect(r.status).toBe(400);
    expect(r.json().error).toBeDefined();
  });

  it('unknown session id → 404', async () => {
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), { 'mcp-session-id': 'no-such-session' });
    expect(r.status).toBe(404);
    expect(r.json().error).toBeDefined();
  });

  it('unknown method → -32601', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const res = await rawRequest(gw.mcpUrl, sid, 'no/such/method', {});
    expect((res.error as { code: number }).code).toBe(-32601);
  });

  it('an unsupported MCP-Protocol-Version → 400', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
    expect(r.status).toBe(400);
  });

  it('a notification is accepted with 202 and no body', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const r = await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }), { 'mcp-session-id': sid });
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
  });

  it('GET without a session → 400; with one it opens an SSE stream with a priming event', async () => {
    const r = await raw('GET', '/mcp', { accept: 'text/event-stream' });
    expect(r.status).toBe(400);
    const sid = await rawSession(gw.mcpUrl);
    const ac = new AbortController();
    const res = await fetch(gw.mcpUrl, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toMatch(/^id: \S+\nretry: \d+\ndata: ?\n\n/);
    ac.abort();
  });

  it('the GET stream resumes with Last-Event-ID: no repeats, nothing lost while disconnected', async () => {
    const sid = await rawSession(gw.mcpUrl);
    type Ev = { id?: string; data: string };
    const openStream = async (lastEventId?: string) => {
      const ac = new AbortController();
      const res = await fetch(gw.mcpUrl, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) }, signal: ac.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      const events: Ev[] = [];
      const next = async (pred: (e: Ev) => boolean): Promise<Ev> => {
        for (;;) {
          const hit = events.find(pred);
          if (hit) return hit;
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          buf += decoder.decode(value, { stream: true });
          let sep: number;
          while ((sep = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, sep);
            buf = buf.slice(sep + 2);
            const ev: Ev = { data: '' };
            for (const line of block.split('\n')) {
              if (line.startsWith('id:')) ev.id = line.slice(3).trim();
              else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
            }
            events.push(ev);
          }
        }
      };
      return { next, events, close: () => ac.abort() };
    };
    const s1 = await openStream();
    await rawRequest(gw.mcpUrl, sid, 'tools/call', { name: 'fx__change_tools', arguments: {} }, 10);
    const first = await s1.next((e) => e.data.includes('notifications/tools/list_changed'));
    expect(first.id).toBeTruthy();
    s1.close();
    // While no stream is open the session keeps what arrives.
    await rawRequest(gw.mcpUrl, sid, 'tools/call', { name: 'fx__change_tools', arguments: {} }, 11);
    const s2 = await openStream(first.id);
    const second = await s2.next((e) => e.data.includes('notifications/tools/list_changed'));
    expect(second.id).not.toBe(first.id);
    // The first notification is not delivered again (the priming event may name the same position, with no data).
    expect(s2.events.filter((e) => e.data.includes('list_changed'))).toHaveLength(1);
    s2.close();
  });

  it('DELETE ends the session; reusing it → 404', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const del = await raw('DELETE', '/mcp', { 'mcp-session-id': sid });
    expect(del.status).toBe(200);
    const again = await post(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }), { 'mcp-session-id': sid });
    expect(again.status).toBe(404);
    const del2 = await raw('DELETE', '/mcp', { 'mcp-session-id': sid });
    expect(del2.status).toBe(404);
  });

  it('initialize twice on one session is refused', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const r = await post(initBody, { 'mcp-session-id': sid });
    // Either a fresh session (the SDK's stance: initialize never carries a session) or an error; never a crash.
    expect([200, 400]).toContain(r.status);
  });
});

describe('DNS-rebinding protection', () => {
  it('Host: evil.example → 403', async () => {
    const r = await raw('POST', '/mcp', { ...JSON_HEADERS, host: 'evil.example' }, initBody);
    expect(r.status).toBe(403);
    const h = await raw('GET', '/healthz', { host: 'evil.example:80' });
    expect(h.status).toBe(403);
  });

  it('Origin: http://evil.example → 403', async () => {
    const r = await post(initBody, { origin: 'http://evil.example' });
    expect(r.status).toBe(403);
  });

  it('loopback Host and Origin are accepted', async () => {
    const port = new URL(gw.url).port;
    const r = await post(initBody, { host: `localhost:${port}`, origin: `http://localhost:${port}` });
    expect(r.status).toBe(200);
  });
});

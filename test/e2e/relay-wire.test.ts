// A call's answer on its way back: one JSON body when the response is the first thing to send (to a client that prefers
// JSON), SSE once progress went first, and the upstream's own text either way with only the id swapped (numbers as the
// upstream wrote them).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawPost, rawSession, readRpcMessages, scratch, sessionHeaders, startGateway, type RunningGateway } from '../helpers/gateway.js';

// A stdio upstream that writes its lines by hand: `1.50` would come back as `1.5` from any parse and serialize.
const UPSTREAM = `
const out = (line) => process.stdout.write(line + '\\n');
let buf = '';
process.stdin.on('data', (c) => {
  buf += c;
  let nl;
  while ((nl = buf.indexOf('\\n')) >= 0) {
    const m = JSON.parse(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
    if (m.method === 'initialize') out(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'wire', version: '1' } } }));
    else if (m.method === 'tools/list') out(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'price', inputSchema: { type: 'object' } }] } }));
    else if (m.method === 'tools/call') {
      const token = m.params._meta && m.params._meta.progressToken;
      if (token !== undefined) out(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 1 } }));
      out('{"result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"price":1.50}},"jsonrpc":"2.0","id":' + JSON.stringify(m.id) + '}');
    } else if (m.id !== undefined) out(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
  }
});
`;

let gw: RunningGateway;
beforeAll(async () => {
  const dir = scratch('switchyard-wire-');
  const script = join(dir, 'wire-upstream.cjs');
  writeFileSync(script, UPSTREAM);
  gw = await startGateway({ servers: { wire: { name: 'wire', transport: 'stdio', command: process.execPath, args: [script] } } });
}, 30_000);
afterAll(async () => {
  await gw?.stop();
});

describe("a call's answer", () => {
  it('comes as one JSON body with the upstream text and the client id', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const res = await rawPost(gw.mcpUrl, sid, { jsonrpc: '2.0', id: 'c-7', method: 'tools/call', params: { name: 'wire__price', arguments: {} } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('mcp-session-id')).toBe(sid);
    expect(await res.text()).toBe('{"result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"price":1.50}},"jsonrpc":"2.0","id":"c-7"}');
  });

  it('comes as one SSE frame to a client that names the stream first in Accept', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const res = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { ...sessionHeaders(sid), accept: 'text/event-stream, application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'wire__price', arguments: {} } }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(await res.text()).toBe('event: message\ndata: {"result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"price":1.50}},"jsonrpc":"2.0","id":9}\n\n');
  });

  it('streams as SSE when progress goes first, the response last', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const res = await rawPost(gw.mcpUrl, sid, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'wire__price', arguments: {}, _meta: { progressToken: 'p-1' } } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.clone().text();
    expect(text).toContain('data: {"result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"price":1.50}},"jsonrpc":"2.0","id":8}\n\n');
    const messages = await readRpcMessages(res);
    expect(messages.map((m) => m.method ?? m.id)).toEqual(['notifications/progress', 8]);
    expect((messages[0]!.params as { progressToken: unknown }).progressToken).toBe('p-1');
  });
});

import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PostReply, prefersJson } from '../../src/downstream/sse.js';
import type { RpcResponse } from '../../src/util/jsonrpc.js';
import { keepWire } from '../../src/util/raw-response.js';

const servers: Array<{ close: () => void }> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server whose one request is handed over; the raw client socket is returned for the test to read or drop. */
async function oneRequest(): Promise<{ res: ServerResponse; socket: ReturnType<typeof connect>; received: (until: string) => Promise<string> }> {
  let hand: (res: ServerResponse) => void;
  const got = new Promise<ServerResponse>((r) => (hand = r));
  const server = createServer((_req, res) => hand(res));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
  socket.on('error', () => {});
  socket.write('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n');
  /** What the client received once `until` is in it. */
  const received = (until: string) =>
    new Promise<string>((resolve) => {
      const look = () => text.includes(until) && (socket.off('data', look), resolve(text));
      socket.on('data', look);
      look();
    });
  return { res: await got, socket, received };
}

describe('PostReply', () => {
  it('answers one sized JSON body with its headers when nothing streamed before and the client prefers JSON', async () => {
    const { res, received } = await oneRequest();
    const reply = new PostReply(res, { 'mcp-session-id': 's1' }, true);
    expect(reply.gone).toBe(false);
    reply.final({ jsonrpc: '2.0', id: 1, result: {} });
    expect(reply.gone).toBe(true);
    const text = await received('"result":{}}');
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(/content-type: application\/json/i);
    expect(text).toMatch(/mcp-session-id: s1/i);
    expect(text).toMatch(/content-length: 36\r\n/i);
    expect(text).not.toMatch(/transfer-encoding/i);
    expect(text.endsWith('\r\n\r\n{"jsonrpc":"2.0","id":1,"result":{}}')).toBe(true);
  });

  it('answers one sized SSE frame when the client named the stream first', async () => {
    const { res, received } = await oneRequest();
    new PostReply(res, { 'mcp-session-id': 's1' }, false).final({ jsonrpc: '2.0', id: 1, result: {} });
    const text = await received('"result":{}}');
    expect(text).toMatch(/content-type: text\/event-stream/i);
    expect(text).toMatch(/mcp-session-id: s1/i);
    expect(text).toMatch(/content-length: \d+/i);
    expect(text).toContain('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
  });

  it('reads the preference from Accept: JSON when it is named before the stream', () => {
    expect(prefersJson('application/json, text/event-stream')).toBe(true);
    expect(prefersJson('application/json')).toBe(true);
    expect(prefersJson('text/event-stream, application/json')).toBe(false);
    expect(prefersJson('*/*')).toBe(false);
    expect(prefersJson(undefined)).toBe(false);
  });

  it('streams SSE once a related message went first, and the response ends the stream', async () => {
    const { res, received } = await oneRequest();
    const reply = new PostReply(res, { 'mcp-session-id': 's1' }, true);
    reply.related({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } });
    reply.final({ jsonrpc: '2.0', id: 1, result: {} });
    const text = await received('"result":{}}');
    expect(text).toMatch(/content-type: text\/event-stream/i);
    expect(text).toMatch(/mcp-session-id: s1/i);
    expect(text).toContain('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n');
    expect(text).toContain('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
  });

  it("relays an upstream's answer as the upstream wrote it, with the client's id", async () => {
    const text = '{"result":{"n":1.50},"jsonrpc":"2.0","id":41}';
    const upstream = JSON.parse(text) as RpcResponse;
    keepWire(upstream, text);
    const { res, received } = await oneRequest();
    new PostReply(res, {}, true).final({ ...upstream, id: 'c-1' });
    expect((await received('"c-1"}')).endsWith('\r\n\r\n{"result":{"n":1.50},"jsonrpc":"2.0","id":"c-1"}')).toBe(true);
  });

  it('is gone as soon as the client hangs up, and then writes nothing', async () => {
    const { res, socket } = await oneRequest();
    const reply = new PostReply(res, {});
    reply.related({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } });
    socket.destroy();
    await new Promise<void>((r) => res.once('close', () => r()));
    expect(reply.gone).toBe(true);
    expect(() => reply.related({ jsonrpc: '2.0', method: 'notifications/message', params: {} })).not.toThrow();
    expect(() => reply.final({ jsonrpc: '2.0', id: 1, result: {} })).not.toThrow();
    expect(res.writableEnded).toBe(false);
  });
});

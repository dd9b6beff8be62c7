/** The test balancer itself: round robin, every header both ways, SSE streamed as it comes, a refused target skipped. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startBalancer, type Balancer } from '../../bench/balancer.mjs';
import { freePort } from './shared-stores.js';

const servers: http.Server[] = [];
const balancers: Balancer[] = [];
afterAll(async () => {
  for (const b of balancers) await b.close();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function backend(name: string, handler?: http.RequestListener): Promise<string> {
  const s = http.createServer(
    handler ??
      ((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, 'mcp-session-id': 'sid-1' });
          res.end(JSON.stringify({ name, method: req.method, url: req.url, auth: req.headers.authorization, custom: req.headers['x-custom'], body }));
        });
      }),
  );
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('round-robin balancer', () => {
  it('spreads requests in turn and forwards method, path, headers and body both ways', async () => {
    const b = await startBalancer({ targets: [await backend('a'), await backend('b'), await backend('c')] });
    balancers.push(b);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${b.url}/mcp?x=${i}`, { method: 'POST', headers: { authorization: 'Bearer t', 'x-custom': 'v' }, body: `payload-${i}` });
      expect(res.headers.get('x-backend')).toBe((await res.clone().json()).name);
      expect(res.headers.get('mcp-session-id')).toBe('sid-1');
      const j = (await res.json()) as Record<string, string>;
      expect(j).toMatchObject({ method: 'POST', url: `/mcp?x=${i}`, auth: 'Bearer t', custom: 'v', body: `payload-${i}` });
      seen.push(j.name!);
    }
    expect(seen).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    expect(b.counts).toEqual([2, 2, 2]);
  });

  it('streams server-sent events as they are written, not when the response ends', async () => {
    let finish: (() => void) | undefined;
    const url = await backend('sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      finish = () => res.end('data: last\n\n');
    });
    const b = await startBalancer({ targets: [url] });
    balancers.push(b);
    const res = await fetch(`${b.url}/mcp`);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe('data: first\n\n');
    finish!();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('data: last\n\n');
  });

  it('skips a target that refuses connections, and answers 502 when none answers', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const b = await startBalancer({ targets: [dead, await backend('alive')] });
    balancers.push(b);
    for (let i = 0; i < 4; i++) expect(((await (await fetch(`${b.url}/x`, { method: 'POST', body: 'b' })).json()) as { name: string }).name).toBe('alive');
    const none = await startBalancer({ targets: [dead] });
    balancers.push(none);
    const res = await fetch(`${none.url}/x`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'bad_gateway', message: expect.stringMatching(/ECONNREFUSED/) });
  });
});

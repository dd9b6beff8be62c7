// Legacy MCP sessions across replicas: three gateways share one throwaway Redis behind a round-robin balancer, and a
// session made on one goes on through the others (calls, progress, the GET stream, DELETE); it answers no other
// agent anywhere; a killed holder means 404 and a fresh initialize works.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sharedStoresUnavailable, stopTestRedis, testRedis } from '../helpers/shared-stores.js';
import { callWithProgress, connectClient, fixtureManifest, initializeMessage, JSON_HEADERS, stopAll, waitFor, whoami, type RunningGateway, startGateway } from '../helpers/gateway.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`skipped: ${skip}`);

const sha = (k: string): string => `sha256:${createHash('sha256').update(k).digest('hex')}`;
const KEY_A = 'k-replica-a';
const KEY_B = 'k-replica-b';
const agent = (id: string, key: string) => ({ id, credentials: { apiKeys: [sha(key)] }, tools: { allow: ['fx__*'] } });

/** A round-robin balancer in front of the replicas, remembering which one served each request. */
interface Balancer {
  url: string;
  backends: string[];
  served: Array<{ backend: string; method: string }>;
  close(): Promise<void>;
}

function startBalancer(backends: string[]): Promise<Balancer> {
  let next = 0;
  const served: Balancer['served'] = [];
  const server = http.createServer((req, res) => {
    const backend = backends[next++ % backends.length]!;
    served.push({ backend, method: req.method ?? 'GET' });
    const { connection: _c, ...headers } = req.headers;
    const out = http.request(new URL(req.url ?? '/', backend), { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders();
      answer.pipe(res);
    });
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`balancer: ${err.message}`);
      else res.destroy();
    });
    res.once('close', () => out.destroy());
    req.pipe(out);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        backends,
        served,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

const post = (url: string, key: string, sid: string | undefined, body: Record<string, unknown>) =>
  fetch(`${url}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-api-key': key, ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}) }, body: JSON.stringify(body) });

describe.skipIf(skip)('legacy MCP sessions across three replicas sharing Redis', () => {
  let replicas: RunningGateway[];
  let balancer: Balancer;
  let redis: Redis;
  let keyPrefix: string;

  beforeAll(async () => {
    const r = await testRedis();
    // The gateways use the default key prefix; the test reads their records through it.
    keyPrefix = 'switchyard:';
    redis = new Redis(r.url);
    const options = {
      servers: { fx: fixtureManifest() },
      agents: { 'agent-a': agent('agent-a', KEY_A), 'agent-b': agent('agent-b', KEY_B) },
      gatewayYaml: { state: { redis: r.url } },
    };
    replicas = await Promise.all([startGateway(options), startGateway(options), startGateway(options)]);
    balancer = await startBalancer(replicas.map((g) => g.url));
  }, 60_000);

  afterAll(async () => {
    await balancer?.close();
    await stopAll();
    redis?.disconnect();
    await stopTestRedis();
  });

  it('initialize, list, calls with progress, the GET stream and DELETE go on across replicas with one upstream session', async () => {
    const client = await connectClient(`${balancer.url}/mcp`, { headers: { 'x-api-key': KEY_A } });
    const transport = client.transport as StreamableHTTPClientTransport;
    const sid = transport.sessionId!;
    expect(sid).toMatch(/^[0-9a-f-]{36}$/);
    const listChanged: unknown[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => {
      listChanged.push(n);
    });

    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('fx__whoami');
    // Five calls over three replicas reach one upstream session: same process, same session, its counter going up.
    const seen = [];
    for (let i = 0; i < 5; i++) seen.push(await whoami(client, 'fx'));
    expect(new Set(seen.map((w) => `${w.pid}/${w.sessionId}`)).size).toBe(1);
    expect(seen.map((w) => w.whoamiCalls)).toEqual([1, 2, 3, 4, 5]);

    const { result, progress } = await callWithProgress(client, 'fx__slow', { ms: 300, steps: 3 });
    expect(result.isError).toBeFalsy();
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);

    // A list change from the upstream reaches the client on its GET stream, wherever that stream was opened.
    await client.callTool({ name: 'fx__change_tools', arguments: {} });
    await waitFor(() => listChanged.length > 0, { what: 'tools/list_changed on the GET stream' });
    const get = balancer.served.filter((s) => s.method === 'GET');
    expect(get.length).toBeGreaterThan(0);

    // Requests were spread across the replicas and those not holding the session forwarded them.
    expect(new Set(balancer.served.map((s) => s.backend)).size).toBe(3);
    const forwarded = replicas.flatMap((g) => g.logRecords()).filter((l) => l.msg === 'session request forwarded to its replica' && l.session === sid);
    expect(forwarded.length).toBeGreaterThan(3);
    const holders = replicas.filter((g) => g.logRecords().some((l) => l.msg === 'session started' && l.session === sid));
    expect(holders).toHaveLength(1);

    expect(await redis.hget(`${keyPrefix}session:${sid}`, 'principal')).toBeTruthy();
    await transport.terminateSession();
    expect(await redis.exists(`${keyPrefix}session:${sid}`)).toBe(0);
    for (const g of replicas) {
      const res = await post(g.url, KEY_A, sid, { jsonrpc: '2.0', id: 9, method: 'tools/list' });
      expect(res.status).toBe(404);
    }
    await client.close();
  }, 60_000);

  it('through replicas that do not hold the session: the GET stream is relayed while open, SSE answers carry their progress, a second stream is refused, DELETE ends the stream', async () => {
    const [holder, viaGet, viaPost] = replicas as [RunningGateway, RunningGateway, RunningGateway];
    const init = await post(holder.url, KEY_A, undefined, initializeMessage());
    const sid = init.headers.get('mcp-session-id')!;
    expect((await post(viaPost.url, KEY_A, sid, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    const stream = await fetch(`${viaGet.url}/mcp`, { headers: { accept: 'text/event-stream', 'x-api-key': KEY_A, 'mcp-session-id': sid } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = stream.body!.getReader();
    let streamed = '';
    const readUntil = async (pattern: RegExp): Promise<boolean> => {
      while (!pattern.test(streamed)) {
        const { done, value } = await reader.read();
        if (done) return false;
        streamed += Buffer.from(value).toString('utf8');
      }
      return true;
    };
    // A second GET stream is refused by the holder, wherever it is asked.
    const second = await fetch(`${viaPost.url}/mcp`, { headers: { accept: 'text/event-stream', 'x-api-key': KEY_A, 'mcp-session-id': sid } });
    expect(second.status).toBe(409);
    expect((await post(viaPost.url, KEY_A, sid, { jsonrpc: '2.0', id: 2, method: 'tools/list' })).status).toBe(200);
    expect((await post(viaPost.url, KEY_A, sid, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fx__change_tools', arguments: {} } })).status).toBe(200);
    expect(await readUntil(/notifications\/tools\/list_changed/)).toBe(true);

    // Progress comes back on the POST's SSE answer through the forwarding replica, before the result.
    const slow = await post(viaGet.url, KEY_A, sid, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'fx__slow', arguments: { ms: 300, steps: 3 }, _meta: { progressToken: 'p1' } } });
    expect(slow.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = (await slow.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { method?: string; id?: number; params?: { progress: number } });
    expect(events.filter((e) => e.method === 'notifications/progress').map((e) => e.params!.progress)).toEqual([1, 2, 3]);
    expect(events.at(-1)!.id).toBe(4);

    const del = await fetch(`${viaPost.url}/mcp`, { method: 'DELETE', headers: { 'x-api-key': KEY_A, 'mcp-session-id': sid } });
    expect(del.status).toBe(200);
    expect(await readUntil(/never/)).toBe(false); // the holder ended the stream and the forwarding replica passed that on
    expect(await redis.exists(`${keyPrefix}session:${sid}`)).toBe(0);
  }, 60_000);

  it('another agent presenting the session id gets 404 from every replica, exactly as for an unknown session', async () => {
    const init = await post(balancer.url, KEY_A, undefined, initializeMessage());
    expect(init.status).toBe(200);
    const sid = init.headers.get('mcp-session-id')!;
    const unknown = await (await post(replicas[0]!.url, KEY_A, '00000000-0000-4000-8000-000000000000', { jsonrpc: '2.0', id: 2, method: 'tools/list' })).json();
    for (const g of replicas) {
      const res = await post(g.url, KEY_B, sid, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual(unknown);
      const stream = await fetch(`${g.url}/mcp`, { headers: { accept: 'text/event-stream', 'x-api-key': KEY_B, 'mcp-session-id': sid } });
      expect(stream.status).toBe(404);
      const del = await fetch(`${g.url}/mcp`, { method: 'DELETE', headers: { 'x-api-key': KEY_B, 'mcp-session-id': sid } });
      expect(del.status).toBe(404);
    }
    // The session is untouched by those attempts: its own agent still uses it through every replica.
    for (const g of replicas) {
      const res = await post(g.url, KEY_A, sid, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
      expect(res.status).toBe(200);
    }
    // A request that says it was forwarded already is never forwarded again: only the holder answers it.
    const hop = await Promise.all(
      replicas.map((g) =>
        fetch(`${g.url}/mcp`, { method: 'POST', headers: { ...JSON_HEADERS, 'x-api-key': KEY_A, 'mcp-session-id': sid, 'x-switchyard-forwarded-by': 'elsewhere' }, body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/list' }) }),
      ),
    );
    expect(hop.map((r) => r.status).sort()).toEqual([200, 404, 404]);
  }, 60_000);

  it('a killed holder means 404 on the other replicas, never a fresh upstream session; initializing again works', async () => {
    const init = await post(balancer.url, KEY_A, undefined, initializeMessage());
    const sid = init.headers.get('mcp-session-id')!;
    const call = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'fx__whoami', arguments: {} } };
    const before = await post(balancer.url, KEY_A, sid, call);
    expect(before.status).toBe(200);
    const holder = replicas.find((g) => g.logRecords().some((l) => l.msg === 'session started' && l.session === sid))!;
    const holderId = (await redis.hget(`${keyPrefix}session:${sid}`, 'replica'))!;
    expect(await redis.get(`${keyPrefix}replica:${holderId}`)).toBe(holder.url);
    holder.proc.kill('SIGKILL');
    await new Promise((r) => holder.proc.once('exit', r));
    const others = replicas.filter((g) => g !== holder);
    for (const g of others) {
      const res = await post(g.url, KEY_A, sid, call);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^Session not found/);
    }
    // The client starts over through the balancer (now in front of the live replicas only) and is served.
    balancer.backends.splice(balancer.backends.indexOf(holder.url), 1);
    const client = await connectClient(`${balancer.url}/mcp`, { headers: { 'x-api-key': KEY_A } });
    const w1 = await whoami(client, 'fx');
    const w2 = await whoami(client, 'fx');
    expect(w2.sessionId).toBe(w1.sessionId);
    expect(w2.whoamiCalls).toBe(2);
    await client.close();
    // Once its heartbeat lapses the dead replica is no longer advertised, and its sessions are still 404, now without a connection attempt.
    await waitFor(async () => (await redis.exists(`${keyPrefix}replica:${holderId}`)) === 0, { what: 'the dead replica heartbeat to lapse' });
    const after = await post(others[0]!.url, KEY_A, sid, call);
    expect(after.status).toBe(404);
    await waitFor(() => others[0]!.logRecords().some((l) => typeof l.msg === 'string' && l.msg.startsWith('session held by a replica that is gone') && l.session === sid), { what: 'the gone-replica log line' });
  }, 60_000);
});

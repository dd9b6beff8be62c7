// What the gateway relays during a call, end to end: progress (namespaced tokens), cancellation both ways,
// server-to-client requests (sampling, elicitation, roots) over stdio and HTTP upstreams, per-client vs shared
// upstream sessions, list_changed, resource subscriptions and logging.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CallToolResultSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import {
  callWithProgress,
  connectClient,
  fixtureManifest,
  jsonOf,
  rawPost,
  rawSession,
  readRpcMessages,
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
  type ClientHandlers,
  type RunningFixture,
  type RunningGateway,
} from '../helpers/gateway.js';

const dir = scratch('switchyard-relay-');
const statsStdio = join(dir, 'stdio.jsonl');
const statsShared = join(dir, 'shared.jsonl');
const statsHttp = join(dir, 'http.jsonl');
let gw: RunningGateway;
let httpFixture: RunningFixture;

/** A client that answers sampling, elicitation and roots in a way that names itself. */
function answering(tag: string): ClientHandlers {
  return {
    sampling: (req) => {
      const first = req.params.messages[0]?.content;
      const prompt = first && !Array.isArray(first) && first.type === 'text' ? first.text : '';
      return { role: 'assistant', model: `model-${tag}`, content: { type: 'text', text: `${tag} answers ${prompt}` } };
    },
    elicitation: (req) => ({ action: 'accept', content: { answer: `${tag}:${req.params.message}` } }),
    roots: () => ({ roots: [{ uri: `file:///roots/${tag}`, name: tag }] }),
  };
}

beforeAll(async () => {
  httpFixture = await startFixture('http', ['--stats-file', statsHttp]);
  gw = await startGateway({
    servers: {
      fx: fixtureManifest({}, ['--stats-file', statsStdio]),
      fxs: fixtureManifest({ session: 'shared' }, ['--stats-file', statsShared]),
      fxh: { transport: 'http', url: httpFixture.url },
    },
  });
}, 60_000);

afterAll(stopAll);

describe('progress', () => {
  for (const server of ['fx', 'fxh', 'fxs']) {
    it(`delivers progress of a slow call to onprogress (${server})`, async () => {
      const client = await connectClient(gw.mcpUrl);
      const { result: res, progress: seen } = await callWithProgress(client, `${server}__slow`, { ms: 400, steps: 4 });
      expect(textOf(res)).toBe('done after 4 steps');
      expect(seen.map((p) => p.progress)).toEqual([1, 2, 3, 4]);
      expect(seen[0]).toMatchObject({ total: 4 });
      await client.close();
    });
  }

  it('gives each client only its own progress when two clients use the same progressToken (shared upstream)', async () => {
    const a = await rawSession(gw.mcpUrl);
    const b = await rawSession(gw.mcpUrl);
    const call = (sid: string, steps: number) =>
      rawPost(gw.mcpUrl, sid, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'fxs__slow', arguments: { ms: 600, steps }, _meta: { progressToken: 'same-token' } } }).then(readRpcMessages);
    const [ma, mb] = await Promise.all([call(a, 3), call(b, 6)]);
    const progressOf = (msgs: Array<Record<string, unknown>>) => msgs.filter((m) => m.method === 'notifications/progress').map((m) => m.params as { progressToken: unknown; progress: number; total: number });
    const pa = progressOf(ma);
    const pb = progressOf(mb);
    expect(pa.map((p) => p.progress)).toEqual([1, 2, 3]);
    expect(pb.map((p) => p.progress)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const p of [...pa, ...pb]) expect(p.progressToken).toBe('same-token');
    expect(pa.every((p) => p.total === 3)).toBe(true);
    expect(pb.every((p) => p.total === 6)).toBe(true);
    expect(ma.at(-1)).toMatchObject({ id: 7, result: { content: [{ text: 'done after 3 steps' }] } });
    expect(mb.at(-1)).toMatchObject({ id: 7, result: { content: [{ text: 'done after 6 steps' }] } });
    // Upstream, the two calls carried different tokens.
    const tokens = readStats(statsShared)
      .filter((s) => s.method === 'tools/call' && s.params?.name === 'slow')
      .map((s) => s.params?._meta?.progressToken);
    expect(new Set(tokens.slice(-2)).size).toBe(2);
  });
});

describe('cancellation', () => {
  for (const [server, stats] of [
    ['fx', statsStdio],
    ['fxh', statsHttp],
  ] as const) {
    it(`an aborted call sends notifications/cancelled upstream and the slow tool stops (${server})`, async () => {
      const client = await connectClient(gw.mcpUrl);
      const ac = new AbortController();
      const before = readStats(stats).length;
      let firstProgress!: () => void;
      const progressed = new Promise<void>((r) => (firstProgress = r));
      const started = Date.now();
      const call = client.request(
        { method: 'tools/call', params: { name: `${server}__slow`, arguments: { ms: 20_000, steps: 40 } } },
        CallToolResultSchema,
        { signal: ac.signal, onprogress: () => firstProgress() },
      );
      await progressed;
      ac.abort('changed my mind');
      await expect(call).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(10_000);
      const stats_ = await waitFor(
        () => {
          const lines = readStats(stats).slice(before);
          const req = lines.find((l) => l.kind === 'request' && l.method === 'tools/call' && l.params?.name === 'slow');
          const cancelled = lines.find((l) => l.kind === 'notification' && l.method === 'notifications/cancelled');
          const stopped = lines.find((l) => l.kind === 'event' && l.method === 'cancelled');
          return req && cancelled && stopped ? { req, cancelled, stopped } : undefined;
        },
        { timeoutMs: 5000, what: 'cancelled notification and cancelled event in the stats file' },
      );
      expect(stats_.cancelled.params?.requestId).toBe(stats_.req.id);
      expect(stats_.stopped.id).toBe(stats_.req.id);
      // The session keeps working.
      expect(textOf(await client.callTool({ name: `${server}__add`, arguments: { a: 1, b: 1 } }))).toBe('2');
      await client.close();
    });
  }

  it('ends the POST stream promptly when the client cancels over raw HTTP', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const res = await rawPost(gw.mcpUrl, sid, { jsonrpc: '2.0', id: 'slow-1', method: 'tools/call', params: { name: 'fx__slow', arguments: { ms: 30_000, steps: 60 }, _meta: { progressToken: 'p' } } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('notifications/progress')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const cancelledAt = Date.now();
    const ack = await rawPost(gw.mcpUrl, sid, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'slow-1', reason: 'test' } });
    expect(ack.status).toBe(202);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(Date.now() - cancelledAt).toBeLessThan(3000);
    // If a final message is sent at all, it is an error, never a success.
    const finals = text
      .split('\n')
      .filter((l) => l.startsWith('data:') && l.length > 6)
      .map((l) => JSON.parse(l.slice(5)) as Record<string, unknown>)
      .filter((m) => m.id === 'slow-1');
    for (const f of finals) expect(f.error).toBeDefined();
  });
});

describe('server-to-client requests', () => {
  for (const server of ['fx', 'fxh']) {
    it(`sampling, elicitation and roots from the upstream reach the calling client and come back (${server})`, async () => {
      const a = await connectClient(gw.mcpUrl, { name: 'client-a', handlers: answering('A') });
      const b = await connectClient(gw.mcpUrl, { name: 'client-b', handlers: answering('B') });
      const [sa, sb] = await Promise.all([
        a.callTool({ name: `${server}__sample`, arguments: { prompt: 'two plus two' } }),
        b.callTool({ name: `${server}__sample`, arguments: { prompt: 'three' } }),
      ]);
      expect(sa.isError).toBeFalsy();
      expect(textOf(sa)).toBe('A answers two plus two');
      expect(sa.structuredContent).toMatchObject({ model: 'model-A' });
      expect(textOf(sb)).toBe('B answers three');

      const ea = await a.callTool({ name: `${server}__elicit`, arguments: { message: 'ok?' } });
      expect(jsonOf(ea)).toEqual({ action: 'accept', content: { answer: 'A:ok?' } });

      const ra = await a.callTool({ name: `${server}__roots`, arguments: {} });
      expect(jsonOf(ra)).toEqual({ roots: [{ uri: 'file:///roots/A', name: 'A' }] });
      const rb = await b.callTool({ name: `${server}__roots`, arguments: {} });
      expect(jsonOf(rb)).toEqual({ roots: [{ uri: 'file:///roots/B', name: 'B' }] });
      await Promise.all([a.close(), b.close()]);
    });
  }

  it('relays sampling, elicitation and roots from a shared stdio upstream to the client whose call caused them', async () => {
    const a = await connectClient(gw.mcpUrl, { name: 'shared-a', handlers: answering('A') });
    const b = await connectClient(gw.mcpUrl, { name: 'shared-b', handlers: answering('B') });
    expect(textOf(await a.callTool({ name: 'fxs__sample', arguments: { prompt: 'alone' } }))).toBe('A answers alone');
    expect(jsonOf(await b.callTool({ name: 'fxs__elicit', arguments: { message: 'q' } }))).toEqual({ action: 'accept', content: { answer: 'B:q' } });
    expect(jsonOf(await b.callTool({ name: 'fxs__roots', arguments: {} }))).toEqual({ roots: [{ uri: 'file:///roots/B', name: 'B' }] });
    // Two clients at once: stdio cannot say which call a request belongs to, so a client may be refused,
    // but one client's prompt must never be answered by the other.
    const results = await Promise.all([
      a.callTool({ name: 'fxs__sample', arguments: { prompt: 'from A' } }).catch((e: Error) => e),
      b.callTool({ name: 'fxs__sample', arguments: { prompt: 'from B' } }).catch((e: Error) => e),
    ]);
    const [ra, rb] = results;
    if (!(ra instanceof Error) && !ra.isError) expect(textOf(ra)).toBe('A answers from A');
    if (!(rb instanceof Error) && !rb.isError) expect(textOf(rb)).toBe('B answers from B');
    await Promise.all([a.close(), b.close()]);
  });

  it('declares to a per-client upstream exactly the capabilities the client declared', async () => {
    const bare = await connectClient(gw.mcpUrl, { name: 'bare', capabilities: {} });
    const who = await whoami(bare, 'fx');
    expect(who.clientInfo.name).toBe('bare');
    expect(who.clientCapabilities.sampling).toBeUndefined();
    const r = await bare.callTool({ name: 'fx__sample', arguments: { prompt: 'x' } });
    expect(r.isError).toBe(true); // the upstream knows this client cannot sample
    const rich = await connectClient(gw.mcpUrl, { name: 'rich', handlers: answering('R') });
    const who2 = await whoami(rich, 'fxh');
    expect(who2.clientCapabilities).toMatchObject({ sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } });
    await Promise.all([bare.close(), rich.close()]);
  });

  it('returns the client error of a declined request to the upstream (it does not hang)', async () => {
    const c = await connectClient(gw.mcpUrl, {
      handlers: {
        sampling: () => {
          throw new Error('user refused');
        },
      },
    });
    const res = await c.callTool({ name: 'fxh__sample', arguments: { prompt: 'no' } }).catch((e: Error) => e);
    // The fixture turns the failed sampling request into a tool error or a JSON-RPC error; either way it answers.
    if (res instanceof Error) expect(res.message).toMatch(/refused|error/i);
    else expect(res.isError).toBe(true);
    await c.close();
  });
});

describe('per-client vs shared upstream sessions', () => {
  it('per-client: two clients see different upstream sessions and counters', async () => {
    const a = await connectClient(gw.mcpUrl);
    const b = await connectClient(gw.mcpUrl);
    for (const server of ['fx', 'fxh']) {
      const wa = await whoami(a, server);
      const wb = await whoami(b, server);
      expect(wa.sessionId).not.toBe(wb.sessionId);
      await a.callTool({ name: `${server}__counter_inc`, arguments: { by: 5 } });
      expect(jsonOf(await a.callTool({ name: `${server}__counter_get`, arguments: {} }))).toMatchObject({ counter: 5 });
      expect(jsonOf(await b.callTool({ name: `${server}__counter_get`, arguments: {} }))).toMatchObject({ counter: 0 });
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('shared: two clients share one upstream session and its state', async () => {
    const a = await connectClient(gw.mcpUrl);
    const b = await connectClient(gw.mcpUrl);
    const wa = await whoami(a, 'fxs');
    const wb = await whoami(b, 'fxs');
    expect(wa.sessionId).toBe(wb.sessionId);
    expect(wa.pid).toBe(wb.pid);
    const start = jsonOf<{ counter: number }>(await a.callTool({ name: 'fxs__counter_get', arguments: {} })).counter;
    await a.callTool({ name: 'fxs__counter_inc', arguments: { by: 3 } });
    expect(jsonOf(await b.callTool({ name: 'fxs__counter_get', arguments: {} }))).toMatchObject({ counter: start + 3 });
    await Promise.all([a.close(), b.close()]);
  });

  it('ends the per-client upstream session when the client session ends', async () => {
    const a = await connectClient(gw.mcpUrl);
    const wa = await whoami(a, 'fxh');
    const transport = a.transport as { terminateSession?: () => Promise<void> };
    await transport.terminateSession?.();
    await a.close();
    await waitForStat(statsHttp, (s) => s.kind === 'http' && s.method === 'DELETE' && s.session === wa.sessionId, {
      timeoutMs: 5000,
      what: 'DELETE of the upstream session',
    });
  });
});

describe('notifications', () => {
  for (const server of ['fx', 'fxh']) {
    it(`tools/list_changed reaches the client and the new tool is callable (${server})`, async () => {
      const c = await connectClient(gw.mcpUrl);
      let changed = 0;
      c.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed++;
      });
      await c.listTools(); // the gateway indexes the tools of this upstream session
      await c.callTool({ name: `${server}__whoami`, arguments: {} });
      const r = await c.callTool({ name: `${server}__change_tools`, arguments: {} });
      expect(r.isError).toBeFalsy();
      await waitFor(() => changed > 0, { timeoutMs: 5000, what: 'notifications/tools/list_changed' });
      const names = await toolNames(c);
      const dynamic = names.filter((n) => n.startsWith(`${server}__dynamic_`));
      expect(dynamic.length).toBeGreaterThan(0);
      const res = await c.callTool({ name: dynamic.at(-1)!, arguments: {} });
      expect(textOf(res)).toBe(dynamic.at(-1)!.slice(`${server}__`.length));
      await c.close();
    });
  }

  it('a shared upstream announces list_changed to every connected client', async () => {
    const a = await connectClient(gw.mcpUrl);
    const b = await connectClient(gw.mcpUrl);
    let bChanged = 0;
    b.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      bChanged++;
    });
    await b.listTools();
    await a.callTool({ name: 'fxs__change_tools', arguments: {} });
    await waitFor(() => bChanged > 0, { timeoutMs: 5000, what: 'list_changed on the other client' });
    await Promise.all([a.close(), b.close()]);
  });

  for (const server of ['fx', 'fxh']) {
    it(`resources/subscribe then touch_resource gives notifications/resources/updated (${server})`, async () => {
      // Single-server view: three fixtures behind this gateway expose the very same URIs.
      const c = await connectClient(gw.serverUrl(server));
      const updates: string[] = [];
      c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
        updates.push(n.params.uri);
      });
      await c.listResources();
      await c.subscribeResource({ uri: 'fixture://static/hello' });
      const r = jsonOf<{ notified: number }>(await c.callTool({ name: 'touch_resource', arguments: { uri: 'fixture://static/hello' } }));
      expect(r.notified).toBe(1);
      await waitFor(() => updates.includes('fixture://static/hello'), { timeoutMs: 5000, what: 'resources/updated' });
      await c.unsubscribeResource({ uri: 'fixture://static/hello' });
      const r2 = jsonOf<{ notified: number }>(await c.callTool({ name: 'touch_resource', arguments: { uri: 'fixture://static/hello' } }));
      expect(r2.notified).toBe(0);
      await c.close();
    });
  }

  it('on a shared upstream, one client unsubscribing does not end another client’s subscription', async () => {
    // Only the shared server in view, so the URI routes to it.
    const a = await connectClient(gw.serverUrl('fxs'));
    const b = await connectClient(gw.serverUrl('fxs'));
    const aUpdates: string[] = [];
    const bUpdates: string[] = [];
    a.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void aUpdates.push(n.params.uri));
    b.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void bUpdates.push(n.params.uri));
    const uri = 'fixture://items/99';
    await a.subscribeResource({ uri });
    await b.subscribeResource({ uri });
    await a.unsubscribeResource({ uri });
    await a.callTool({ name: 'touch_resource', arguments: { uri } });
    await waitFor(() => bUpdates.includes(uri), { timeoutMs: 5000, what: 'resources/updated for the still-subscribed client' });
    expect(aUpdates).not.toContain(uri);
    await b.unsubscribeResource({ uri });
    await Promise.all([a.close(), b.close()]);
  });

  for (const server of ['fx', 'fxh']) {
    it(`logging/setLevel filters upstream log messages; messages above it reach the client (${server})`, async () => {
      const c = await connectClient(gw.mcpUrl);
      const logs: LoggingMessageNotification['params'][] = [];
      c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
      await c.setLoggingLevel('warning');
      const low = jsonOf<{ sent: boolean; threshold: string }>(await c.callTool({ name: `${server}__log`, arguments: { level: 'info', message: 'quiet' } }));
      expect(low).toMatchObject({ sent: false, threshold: 'warning' });
      const high = jsonOf<{ sent: boolean }>(await c.callTool({ name: `${server}__log`, arguments: { level: 'error', message: 'loud' } }));
      expect(high.sent).toBe(true);
      await waitFor(() => logs.some((l) => l.level === 'error' && JSON.stringify(l.data).includes('loud')), { timeoutMs: 5000, what: 'log message' });
      expect(logs.some((l) => JSON.stringify(l.data).includes('quiet'))).toBe(false);
      await c.close();
    });
  }
});

// A 2026-07-28 upstream (the v2 SDK conformance fixture, found by `protocol: auto`) behind the gateway: its
// input_required results reach a legacy (2025-11-25 session) client as real server-to-client requests on the
// call's POST stream and the answers go back as the retry; a 2026-07-28 client gets them with the upstream's
// requestState wrapped in gateway-minted state, which is refused when altered, foreign or not the gateway's.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, REPO_ROOT, startGateway, stopAll, textOf, type RunningGateway } from '../helpers/gateway.js';
import { startFixture, stopProcess, type Started } from '../helpers/started-process.js';

const WORKER_KEY = 'worker-key-modern-up-1a2b';
const OTHER_KEY = 'other-key-modern-up-3c4d';
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const PV = '2026-07-28';
const CAPS = { elicitation: {}, sampling: {}, roots: {} };
const META = { 'io.modelcontextprotocol/protocolVersion': PV, 'io.modelcontextprotocol/clientCapabilities': CAPS, 'io.modelcontextprotocol/clientInfo': { name: 'e2e-2026', version: '1.0.0' } };
const T = (tool: string) => `modern__test_input_required_result_${tool}`;

let fixture: Started;
let gw: RunningGateway;

beforeAll(async () => {
  fixture = await startFixture([join(REPO_ROOT, 'test/conformance-2026/fixture-server.mjs'), '--port', '0'], 'The 2026-07-28 fixture', join(REPO_ROOT, 'test/conformance-2026/node_modules/.bin/node'));
  gw = await startGateway({
    // No `protocol`: auto finds that the fixture speaks 2026-07-28.
    servers: { modern: { transport: 'http', url: fixture.value } },
    agents: {
      worker: { id: 'worker', credentials: { apiKeys: [sha(WORKER_KEY)] }, tools: { allow: ['*'] } },
      other: { id: 'other', credentials: { apiKeys: [sha(OTHER_KEY)] }, tools: { allow: ['*'] } },
    },
  });
}, 60_000);

afterAll(async () => {
  await stopAll();
  await stopProcess(fixture?.child);
});

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

describe('a 2026-07-28 upstream’s input_required reaches a legacy client as real requests', () => {
  it('elicitation, sampling and roots: the v1 client answers each and the call completes', async () => {
    const asked: string[] = [];
    const client = await connectClient(gw.mcpUrl, {
      headers: auth(WORKER_KEY),
      handlers: {
        elicitation: async (req) => {
          asked.push(`elicitation:${req.params.message}`);
          return { action: 'accept', content: { name: 'Ada' } };
        },
        sampling: async () => {
          asked.push('sampling');
          return { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm' };
        },
        roots: async () => {
          asked.push('roots');
          return { roots: [{ uri: 'file:///work', name: 'work' }] };
        },
      },
    });
    expect(textOf(await client.callTool({ name: T('elicitation'), arguments: {} }))).toBe('Hello, Ada!');
    expect(textOf(await client.callTool({ name: T('sampling'), arguments: {} }))).toBe('Sampling response: Paris');
    expect(textOf(await client.callTool({ name: T('list_roots'), arguments: {} }))).toBe('Client exposed 1 root(s): file:///work');
    // Three requests in one round, each asked and all sent back in one retry.
    expect(textOf(await client.callTool({ name: T('multiple_inputs'), arguments: {} }))).toBe('Paris Ada — 1 root(s) visible');
    expect(asked).toEqual(['elicitation:What is your name?', 'sampling', 'roots', 'elicitation:What is your name?', 'sampling', 'roots']);
    await client.close();
  });

  it('the upstream’s own requestState goes back untouched, round after round (the fixture verifies its HMAC)', async () => {
    const answers: Array<Record<string, string | boolean>> = [{ name: 'Ada' }, { color: 'blue' }, { ok: true }];
    const messages: string[] = [];
    const client = await connectClient(gw.mcpUrl, {
      headers: auth(WORKER_KEY),
      handlers: {
        elicitation: async (req) => {
          messages.push(String(req.params.message));
          return { action: 'accept', content: answers[messages.length - 1]! };
        },
      },
    });
    expect(textOf(await client.callTool({ name: T('multi_round'), arguments: {} }))).toBe('Multi-round complete: Ada likes blue');
    expect(messages).toEqual(['Step 1: What is your name?', 'Step 2: What is your favorite color?']);
    expect(textOf(await client.callTool({ name: T('request_state'), arguments: {} }))).toBe('state-ok: requestState verified and confirmation received');
    await client.close();
  });

  it('a client that keeps declining is asked at most 16 times, then the call fails with a clear error', async () => {
    let asked = 0;
    const client = await connectClient(gw.mcpUrl, {
      headers: auth(WORKER_KEY),
      handlers: {
        elicitation: async () => {
          asked++;
          return { action: 'decline' };
        },
      },
    });
    const err = await client.callTool({ name: T('elicitation'), arguments: {} }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/asked for client input 16 times in one call/);
    expect(asked).toBe(16);
    await client.close();
  });

  it('a client that declared no elicitation is not asked: the upstream sees its capabilities in the envelope and refuses with -32021', async () => {
    const client = await connectClient(gw.mcpUrl, { headers: auth(WORKER_KEY) });
    const err = await client.callTool({ name: T('elicitation'), arguments: {} }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/^MCP error -32021: Cannot request input 'user_name' \(elicitation\/create\)/);
    await client.close();
  });

  it('the elicitation request travels on the call’s own POST stream, and the answer completes it there', async () => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth(WORKER_KEY) };
    const init = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: { name: 'raw', version: '1' } } }),
    });
    const sid = init.headers.get('mcp-session-id')!;
    await init.text();
    const session = { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    await (await fetch(gw.mcpUrl, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
    // No GET stream is opened: the request can only arrive on the call's POST.
    const call = await fetch(gw.mcpUrl, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: T('elicitation'), arguments: {} } }) });
    expect(call.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = call.body!.getReader();
    const decoder = new TextDecoder();
    const frames: Array<Record<string, unknown>> = [];
    let buffer = '';
    const next = async (): Promise<Record<string, unknown>> => {
      for (;;) {
        const line = buffer.split('\n').find((l) => l.startsWith('data: '));
        if (line) {
          buffer = buffer.slice(buffer.indexOf(line) + line.length + 1);
          const msg = JSON.parse(line.slice(6)) as Record<string, unknown>;
          frames.push(msg);
          return msg;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended; frames: ${JSON.stringify(frames)}`);
        buffer += decoder.decode(value, { stream: true });
      }
    };
    const request = await next();
    expect(request).toMatchObject({ method: 'elicitation/create', params: { message: 'What is your name?' } });
    expect(request.id).toBeDefined();
    const answered = await fetch(gw.mcpUrl, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', id: request.id, result: { action: 'accept', content: { name: 'Grace' } } }) });
    expect(answered.status).toBe(202);
    await answered.text();
    const final = await next();
    expect(final).toMatchObject({ id: 2, result: { content: [{ type: 'text', text: 'Hello, Grace!' }] } });
    await reader.cancel();
  });
});

interface Answer {
  status: number;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
}

/** One 2026-07-28 POST to the federated endpoint. */
async function post(method: string, params: Record<string, unknown>, key = WORKER_KEY): Promise<Answer> {
  const res = await fetch(gw.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PV, 'mcp-method': method, ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}), ...auth(key) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: META } }),
  });
  const text = await res.text();
  const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  return { status: res.status, body: JSON.parse(data.length ? data[data.length - 1]! : text) as Answer['body'] };
}

describe('a 2026-07-28 client gets the upstream’s requestState inside gateway-minted state', () => {
  it('wrapped, the retry completes round after round; the inner state reaches the upstream untouched', async () => {
    let r = (await post('tools/call', { name: T('multi_round'), arguments: {} })).body.result!;
    const answers: Record<string, unknown> = { step1: { action: 'accept', content: { name: 'Ada' } }, step2: { action: 'accept', content: { color: 'green' } } };
    for (let round = 0; r.resultType === 'input_required'; round++) {
      expect(round).toBeLessThan(2);
      // The upstream's own keys and requests are passed as they are; only the state is the gateway's.
      const key = Object.keys(r.inputRequests as object)[0]!;
      expect(key).toBe(`step${round + 1}`);
      expect(String(r.requestState)).toMatch(/^sy2\./);
      r = (await post('tools/call', { name: T('multi_round'), arguments: {}, requestState: r.requestState, inputResponses: { [key]: answers[key] } })).body.result!;
    }
    expect(r.content).toEqual([{ type: 'text', text: 'Multi-round complete: Ada likes green' }]);
  });

  it('refuses altered state, state for another tool or caller, and state the gateway never minted', async () => {
    const first = (await post('tools/call', { name: T('request_state'), arguments: {} })).body.result!;
    const state = String(first.requestState);
    const responses = { confirm: { action: 'accept', content: { ok: true } } };
    const retry = (st: unknown, name = T('request_state'), key = WORKER_KEY) => post('tools/call', { name, arguments: {}, requestState: st, inputResponses: responses }, key);

    // sy2.<key id>.<issued>.<the upstream's state>.<mac>
    const [prefix, kid, issued, inner, mac] = state.split('.');
    const innerText = Buffer.from(inner!, 'base64url').toString('utf8');
    const alteredInner = `${prefix}.${kid}.${issued}.${Buffer.from(`${innerText}x`).toString('base64url')}.${mac}`;
    const cases: Array<[string, Promise<Answer>]> = [
      ['appended', retry(`${state}-TAMPERED`)],
      ['inner state altered', retry(alteredInner)],
      ['another tool', retry(state, T('tampered_state'))],
      ['another caller', retry(state, T('request_state'), OTHER_KEY)],
      ['the upstream’s bare state', retry(innerText)],
      ['not a string', retry(42)],
    ];
    for (const [what, answer] of cases) {
      const a = await answer;
      expect([what, a.status, a.body.error?.code, a.body.error?.data?.reason]).toEqual([what, 400, -32602, 'invalid_request_state']);
      expect(a.body.error?.message).toMatch(/Start the request again without requestState/);
    }
    // The genuine state still works after all that.
    const ok = await retry(state);
    expect(ok.body.result!.content).toEqual([{ type: 'text', text: 'state-ok: requestState verified and confirmation received' }]);
  });
});

/** A frame source that resolves waits as frames arrive (no polling), failing after `ms` with what it saw. */
function framesOf(body: ReadableStream<Uint8Array>) {
  const frames: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('data: ')) frames.push(JSON.parse(l.slice(6)) as Record<string, unknown>);
      for (const w of waiters) w();
    }
  })();
  const waitFor = (pred: (f: Record<string, unknown>) => boolean, what: string, ms = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = frames.find(pred);
        if (!hit) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${what} never arrived; frames: ${JSON.stringify(frames)}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { frames, waitFor, close: async () => { await reader.cancel().catch(() => {}); await pump; } };
}

describe('a 2026-07-28 upstream’s list changes, heard over its subscriptions/listen', () => {
  it('reach a legacy client’s session and a 2026-07-28 client’s listen stream through the gateway', async () => {
    // The legacy client lists first, so the change is news to it.
    let heard!: () => void;
    const legacyHeard = new Promise<void>((r) => (heard = r));
    const client = await connectClient(gw.mcpUrl, { headers: auth(WORKER_KEY) });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => heard());
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('modern__test_trigger_tool_change');

    await post('tools/list', {}, OTHER_KEY);
    const res = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PV, 'mcp-method': 'subscriptions/listen', ...auth(OTHER_KEY) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 77, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true }, _meta: META } }),
    });
    const stream = framesOf(res.body!);
    try {
      await stream.waitFor((f) => f.method === 'notifications/subscriptions/acknowledged', 'the acknowledgement');
      // The change happens upstream (the fixture publishes it to every listen stream), not in a call of either client.
      const trigger = await post('tools/call', { name: 'modern__test_trigger_tool_change', arguments: {} }, OTHER_KEY);
      expect(trigger.body.result!.content).toEqual([{ type: 'text', text: 'tools_list_changed published' }]);
      const note = await stream.waitFor((f) => f.method === 'notifications/tools/list_changed', 'tools/list_changed on the gateway’s listen stream');
      expect((note.params as { _meta: Record<string, unknown> })._meta['io.modelcontextprotocol/subscriptionId']).toBe(77);
      await legacyHeard;
    } finally {
      await stream.close();
      await client.close();
    }
  });
});

// MCP 2026-07-28 downstream on /mcp and /servers/{name}/mcp, in front of a legacy (2025-11-25) upstream: the
// revision is chosen per request, the revision's ladder answers bad requests with its errors and statuses, each
// request is authenticated and joins a workflow on its own, and calls take the same Step path (policy, audit).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, fixtureManifest, REPO_ROOT, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';

const WORKER_KEY = 'worker-key-2026-a1b2c3';
const READER_KEY = 'reader-key-2026-d4e5f6';
const ADMIN_TOKEN = 'admin-token-2026-778899';
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

const PV = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': PV, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'e2e-2026', version: '1.0.0' } };

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway({
    // `shared`: one upstream session for every client, declaring every capability the gateway can relay.
    servers: { feat: fixtureManifest(), shared: fixtureManifest({ session: 'shared' }) },
    agents: {
      worker: { id: 'worker', credentials: { apiKeys: [sha(WORKER_KEY)] }, tools: { allow: ['*'] }, canSetWorkflow: true },
      reader: { id: 'reader', credentials: { apiKeys: [sha(READER_KEY)] }, tools: { allow: ['feat__echo'] } },
    },
    gatewayYaml: { admin: { tokens: [sha(ADMIN_TOKEN)] } },
  });
}, 60_000);

afterAll(stopAll);

interface Answer {
  status: number;
  contentType: string;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
  /** Every JSON-RPC message of an SSE answer, in order (the last is the response). */
  messages: Array<Record<string, unknown>>;
}

/** One 2026-07-28 POST with conformant headers unless `headers` overrides them (null removes one). */
async function post(url: string, method: string, params: Record<string, unknown>, opts: { key?: string; headers?: Record<string, string | null>; id?: number } = {}): Promise<Answer> {
  const name = method === 'tools/call' || method === 'prompts/get' ? params.name : method === 'resources/read' ? params.uri : undefined;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': PV,
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
  };
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: opts.id ?? 1, method, params }) });
  const contentType = res.headers.get('content-type') ?? '';
  const text = await res.text();
  const messages = contentType.includes('text/event-stream')
    ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>)
    : [JSON.parse(text) as Record<string, unknown>];
  return { status: res.status, contentType, body: messages[messages.length - 1] as Answer['body'], messages };
}

const withMeta = (params: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) => ({ ...params, _meta: { ...META, ...meta } });

describe('2026-07-28 requests on /mcp', () => {
  it('server/discover says what the gateway offers, with the revision and cache hints', async () => {
    const a = await post(gw.mcpUrl, 'server/discover', withMeta(), { key: WORKER_KEY });
    expect(a.status).toBe(200);
    const r = a.body.result!;
    expect(r.supportedVersions).toEqual([PV]);
    expect(r.capabilities).toMatchObject({ tools: {}, prompts: {}, resources: {} });
    expect((r.capabilities as Record<string, Record<string, unknown>>).resources!.subscribe).toBeUndefined();
    expect(r.resultType).toBe('complete');
    expect(r.cacheScope).toBe('private');
    expect(r.ttlMs).toBe(0);
    expect((r._meta as Record<string, unknown>)['io.modelcontextprotocol/serverInfo']).toMatchObject({ name: 'switchyard' });
  });

  it('lists tools per caller, deterministically, with cacheScope private', async () => {
    const w1 = await post(gw.mcpUrl, 'tools/list', withMeta(), { key: WORKER_KEY });
    const w2 = await post(gw.mcpUrl, 'tools/list', withMeta(), { key: WORKER_KEY });
    const names = (a: Answer) => (a.body.result!.tools as Array<{ name: string }>).map((t) => t.name);
    expect(names(w1)).toContain('feat__echo');
    expect(names(w1)).toContain('feat__add');
    expect(names(w2)).toEqual(names(w1));
    expect(w1.body.result!.cacheScope).toBe('private');
    const r = await post(gw.mcpUrl, 'tools/list', withMeta(), { key: READER_KEY });
    expect(names(r)).toEqual(['feat__echo']);
  });

  it('calls a tool through the Step path: result with resultType and the workflow in _meta, and an audit record', async () => {
    const a = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__echo', arguments: { text: 'hello-2026' } }), { key: WORKER_KEY });
    expect(a.status).toBe(200);
    const r = a.body.result!;
    expect(JSON.stringify(r.content)).toContain('hello-2026');
    expect(r.resultType).toBe('complete');
    const workflowId = (r._meta as Record<string, unknown>)['io.switchyard/workflowId'];
    expect(typeof workflowId).toBe('string');
    const wf = await waitForWorkflow(workflowId as string);
    expect(wf.agent).toBe('worker');
    expect(wf.steps.map((s) => s.tool)).toEqual(['echo']);
  });

  it('refuses a tool the caller’s policy hides exactly like an unknown one, and never reaches the upstream', async () => {
    const a = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__add', arguments: { a: 1, b: 2 } }), { key: READER_KEY });
    expect(a.body.error?.code).toBe(-32602);
    expect(a.body.error?.message).toContain('Unknown tool');
  });

  it('authenticates every request on its own', async () => {
    const a = await post(gw.mcpUrl, 'tools/list', withMeta());
    expect(a.status).toBe(401);
    const b = await post(gw.mcpUrl, 'tools/list', withMeta(), { key: 'not-a-key' });
    expect(b.status).toBe(401);
  });

  it('joins the workflow an allowed caller names with X-Workflow-Id, and one per W3C trace otherwise', async () => {
    const named = `wf-2026-${Date.now()}`;
    const ids: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const a = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__echo', arguments: { text: `n${i}` } }), { key: WORKER_KEY, headers: { 'x-workflow-id': named } });
      ids.push((a.body.result!._meta as Record<string, unknown>)['io.switchyard/workflowId']);
    }
    expect(ids).toEqual([named, named]);
    expect((await waitForWorkflow(named, 2)).steps).toHaveLength(2);

    const trace = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const traced: unknown[] = [];
    for (const key of [READER_KEY, READER_KEY]) {
      const a = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__echo', arguments: { text: 't' } }), { key, headers: { traceparent: trace } });
      traced.push((a.body.result!._meta as Record<string, unknown>)['io.switchyard/workflowId']);
    }
    expect(traced[0]).toBe(traced[1]);
    // The same trace from another agent is another workflow.
    const other = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__echo', arguments: { text: 't' } }), { key: WORKER_KEY, headers: { traceparent: trace } });
    expect((other.body.result!._meta as Record<string, unknown>)['io.switchyard/workflowId']).not.toBe(traced[0]);
  });

  it('relays progress on the request’s stream and log messages only when _meta asks for a logLevel', async () => {
    const progress = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__slow', arguments: { steps: 3, ms: 1 } }, { progressToken: 'p-1' }), { key: WORKER_KEY });
    const notes = progress.messages.filter((m) => m.method === 'notifications/progress');
    expect(notes.length).toBeGreaterThan(0);
    expect((notes[0]!.params as Record<string, unknown>).progressToken).toBe('p-1');

    const quiet = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__log', arguments: { level: 'warning', message: 'heard' } }), { key: WORKER_KEY });
    expect(quiet.body.result).toBeDefined();
    expect(quiet.messages.filter((m) => m.method === 'notifications/message')).toEqual([]);
    const loud = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__log', arguments: { level: 'warning', message: 'heard' } }, { 'io.modelcontextprotocol/logLevel': 'debug' }), { key: WORKER_KEY });
    expect(loud.messages.filter((m) => m.method === 'notifications/message').length, JSON.stringify(loud.messages)).toBeGreaterThan(0);
  });
});

describe('the revision’s ladder turns bad requests away with its errors', () => {
  it('Mcp-Method absent or different from the body: HeaderMismatch -32020, HTTP 400', async () => {
    const absent = await post(gw.mcpUrl, 'tools/list', withMeta(), { key: WORKER_KEY, headers: { 'mcp-method': null } });
    expect([absent.status, absent.body.error?.code]).toEqual([400, -32020]);
    const other = await post(gw.mcpUrl, 'tools/list', withMeta(), { key: WORKER_KEY, headers: { 'mcp-method': 'prompts/list' } });
    expect([other.status, other.body.error?.code]).toEqual([400, -32020]);
  });

  it('Mcp-Name that disagrees with the body is refused before policy reads it: the body decides, never the header', async () => {
    // The reader may call feat__echo only: a header naming it cannot smuggle a call to feat__add.
    const a = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__add', arguments: { a: 1, b: 2 } }), { key: READER_KEY, headers: { 'mcp-name': 'feat__echo' } });
    expect([a.status, a.body.error?.code]).toEqual([400, -32020]);
    const missing = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__echo', arguments: {} }), { key: READER_KEY, headers: { 'mcp-name': null } });
    expect([missing.status, missing.body.error?.code]).toEqual([400, -32020]);
  });

  it('_meta without clientCapabilities: -32602, HTTP 400, with the id echoed', async () => {
    const a = await post(gw.mcpUrl, 'tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': PV } }, { key: WORKER_KEY, id: 77 });
    expect([a.status, a.body.error?.code, a.body.id]).toEqual([400, -32602, 77]);
    expect(a.body.error?.message).toContain('clientCapabilities');
  });

  it('an unknown revision: UnsupportedProtocolVersion -32022 naming what is supported and echoing what was asked', async () => {
    const a = await post(gw.mcpUrl, 'server/discover', withMeta({}, { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' }), { key: WORKER_KEY, headers: { 'mcp-protocol-version': '2099-01-01' } });
    expect([a.status, a.body.error?.code]).toEqual([400, -32022]);
    expect(a.body.error?.data).toMatchObject({ supported: [PV], requested: '2099-01-01' });
  });

  it('a protocol-version header that disagrees with _meta: -32020', async () => {
    const a = await post(gw.mcpUrl, 'server/discover', withMeta({}, { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' }), { key: WORKER_KEY });
    expect([a.status, a.body.error?.code]).toEqual([400, -32020]);
  });

  it('removed methods are not found: HTTP 404, -32601', async () => {
    for (const method of ['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'no/such']) {
      const a = await post(gw.mcpUrl, method, withMeta(), { key: WORKER_KEY });
      expect([method, a.status, a.body.error?.code]).toEqual([method, 404, -32601]);
    }
  });

  it('a legacy initialize on the same path still opens a session', async () => {
    const client = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${WORKER_KEY}` } });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('feat__echo');
    await client.close();
  });
});

describe('2026-07-28 on /servers/{name}/mcp', () => {
  it('discover shows that server’s own view and calls use its unprefixed names', async () => {
    const url = gw.serverUrl('feat');
    const d = await post(url, 'server/discover', withMeta(), { key: WORKER_KEY });
    expect((d.body.result!._meta as Record<string, unknown>)['io.modelcontextprotocol/serverInfo']).not.toMatchObject({ name: 'switchyard' });
    const c = await post(url, 'tools/call', withMeta({ name: 'echo', arguments: { text: 'single' } }), { key: WORKER_KEY });
    expect(JSON.stringify(c.body.result!.content)).toContain('single');
  });
});

/** Opens subscriptions/listen and collects its frames until `until` says enough (or the deadline passes). */
async function listen(url: string, key: string, notifications: Record<string, boolean>, id: number) {
  const controller = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    signal: controller.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PV, 'mcp-method': 'subscriptions/listen', authorization: `Bearer ${key}` },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen', params: { notifications, _meta: META } }),
  });
  const frames: Array<Record<string, unknown>> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('data: ')) frames.push(JSON.parse(l.slice(6)) as Record<string, unknown>);
    }
  })();
  const waitFor = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`listen stream: ${what} never arrived; frames: ${JSON.stringify(frames)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { status: res.status, frames, waitFor, close: async () => { controller.abort(); await pump; } };
}

describe('a legacy upstream’s requests to the client become input_required', () => {
  const CAPS = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: {}, sampling: {}, roots: {} } };

  it('elicitation during a call: input_required, then the retry with inputResponses completes the same upstream call', async () => {
    const first = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__elicit', arguments: { message: 'Your name?' } }, CAPS), { key: WORKER_KEY, id: 10 });
    expect(first.status).toBe(200);
    const r = first.body.result!;
    expect(r.resultType).toBe('input_required');
    const [key, request] = Object.entries(r.inputRequests as Record<string, { method: string; params: { message: string } }>)[0]!;
    expect(request.method).toBe('elicitation/create');
    expect(request.params.message).toBe('Your name?');
    expect(String(r.requestState)).toMatch(/^sy1\./);
    const retry = await post(
      gw.mcpUrl,
      'tools/call',
      withMeta({ name: 'feat__elicit', arguments: { message: 'Your name?' }, requestState: r.requestState, inputResponses: { [key]: { action: 'accept', content: { answer: 'Ada' } } } }, CAPS),
      { key: WORKER_KEY, id: 11 },
    );
    expect(retry.body.id).toBe(11);
    expect(retry.body.result!.resultType).toBe('complete');
    expect(JSON.stringify(retry.body.result!.content)).toContain('Ada');
    // One step for the whole exchange, in the workflow the first answer named.
    const wf = await waitForWorkflow((r._meta as Record<string, string>)['io.switchyard/workflowId']!);
    expect(wf.steps.map((s) => s.tool)).toEqual(['elicit']);
  });

  it('sampling and roots work the same way', async () => {
    for (const [tool, args, answer, expected] of [
      ['feat__sample', { prompt: 'hi' }, { role: 'assistant', content: { type: 'text', text: 'sampled-reply' }, model: 'm' }, 'sampled-reply'],
      ['feat__roots', {}, { roots: [{ uri: 'file:///work', name: 'work' }] }, 'file:///work'],
    ] as const) {
      const first = await post(gw.mcpUrl, 'tools/call', withMeta({ name: tool, arguments: args }, CAPS), { key: WORKER_KEY });
      const r = first.body.result!;
      expect([tool, r.resultType]).toEqual([tool, 'input_required']);
      const key = Object.keys(r.inputRequests as object)[0]!;
      const retry = await post(gw.mcpUrl, 'tools/call', withMeta({ name: tool, arguments: args, requestState: r.requestState, inputResponses: { [key]: answer } }, CAPS), { key: WORKER_KEY });
      expect(JSON.stringify(retry.body.result!.content)).toContain(expected);
    }
  });

  it('refuses tampered, replayed or another caller’s requestState, and asks again when the response is missing', async () => {
    const first = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__elicit', arguments: { message: 'q' } }, CAPS), { key: WORKER_KEY });
    const r = first.body.result!;
    const state = String(r.requestState);
    const key = Object.keys(r.inputRequests as object)[0]!;
    const retry = (st: string, key2: string | undefined, k = WORKER_KEY) =>
      post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__elicit', arguments: { message: 'q' }, requestState: st, inputResponses: key2 ? { [key2]: { action: 'decline' } } : {} }, CAPS), { key: k });
    const tampered = await retry(`${state.slice(0, -2)}xx`, key);
    expect([tampered.status, tampered.body.error?.code]).toEqual([400, -32602]);
    // The reader is allowed feat__echo only, but even a caller allowed the tool cannot use another's state.
    const foreign = await retry(state, key, READER_KEY);
    expect(foreign.body.error?.code).toBe(-32602);
    const again = await retry(state, undefined);
    expect(again.body.result!.resultType).toBe('input_required');
    expect(again.body.result!.requestState).toBe(state);
    const ok = await retry(state, key);
    expect(ok.body.result!.resultType).toBe('complete');
    expect(JSON.stringify(ok.body.result!.content)).toContain('decline');
    const replayed = await retry(state, key);
    expect(replayed.body.error?.code).toBe(-32602);
  });

  it('a client that did not declare the capability an upstream asks for gets MissingRequiredClientCapability -32021, HTTP 400', async () => {
    // A per-client upstream session declares what the client declared, so only a shared one asks regardless.
    const a = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'shared__elicit', arguments: { message: 'q' } }, { 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } }), { key: WORKER_KEY });
    expect([a.status, a.body.error?.code]).toEqual([400, -32021]);
    expect(a.body.error?.data).toMatchObject({ requiredCapabilities: { elicitation: {} } });
  });
});

describe('subscriptions/listen', () => {
  it('acknowledges first, then relays the upstream’s list changes tagged with the subscription id, per opted-in type', async () => {
    // The worker lists tools first (as a client does), so the upstream's change is news to it.
    await post(gw.mcpUrl, 'tools/list', withMeta(), { key: WORKER_KEY });
    const tools = await listen(gw.mcpUrl, WORKER_KEY, { toolsListChanged: true }, 41);
    const prompts = await listen(gw.mcpUrl, WORKER_KEY, { promptsListChanged: true }, 42);
    try {
      expect(tools.status).toBe(200);
      await tools.waitFor(() => tools.frames.length > 0, 'the acknowledgement');
      await prompts.waitFor(() => prompts.frames.length > 0, 'the acknowledgement');
      expect(tools.frames[0]).toMatchObject({ method: 'notifications/subscriptions/acknowledged', params: { notifications: { toolsListChanged: true }, _meta: { 'io.modelcontextprotocol/subscriptionId': 41 } } });
      const changed = await post(gw.mcpUrl, 'tools/call', withMeta({ name: 'feat__change_tools', arguments: {} }), { key: WORKER_KEY });
      expect(changed.body.result).toBeDefined();
      await tools.waitFor(() => tools.frames.some((f) => f.method === 'notifications/tools/list_changed'), 'tools/list_changed');
      const note = tools.frames.find((f) => f.method === 'notifications/tools/list_changed')!;
      expect((note.params as Record<string, Record<string, unknown>>)._meta!['io.modelcontextprotocol/subscriptionId']).toBe(41);
      // The prompts-only stream got its acknowledgement and nothing about tools.
      expect(prompts.frames.map((f) => f.method)).toEqual(['notifications/subscriptions/acknowledged']);
    } finally {
      await tools.close();
      await prompts.close();
    }
  });

  it('refuses a listen without a notifications filter with -32602', async () => {
    const a = await post(gw.mcpUrl, 'subscriptions/listen', withMeta(), { key: WORKER_KEY });
    expect([a.status, a.body.error?.code]).toEqual([400, -32602]);
  });
});

describe('the v2 SDK client pinned to 2026-07-28', () => {
  it('connects, lists and calls through the federated endpoint', async () => {
    const sdk = join(REPO_ROOT, 'test', 'conformance-2026', 'node_modules', '@modelcontextprotocol', 'client', 'dist', 'index.mjs');
    const { Client, StreamableHTTPClientTransport } = (await import(sdk)) as typeof import('@modelcontextprotocol/sdk/client/index.js') & typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const client = new (Client as unknown as new (info: object, opts: object) => InstanceType<typeof Client>)({ name: 'v2-e2e', version: '1.0.0' }, { versionNegotiation: { mode: { pin: PV } } });
    const transport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${WORKER_KEY}` } } });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('feat__echo');
      const result = await client.callTool({ name: 'feat__echo', arguments: { text: 'from-v2' } });
      expect(JSON.stringify(result.content)).toContain('from-v2');
    } finally {
      await client.close();
    }
  });
});

interface WorkflowView {
  id: string;
  agent: string;
  steps: Array<{ tool: string; outcome: string }>;
}

/** The workflow once the audit writer has flushed `steps` steps of it. */
async function waitForWorkflow(id: string, steps = 1): Promise<WorkflowView> {
  const deadline = Date.now() + 10_000;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await fetch(`${gw.url}/admin/api/workflows/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    if (res.ok) {
      const wf = (await res.json()) as WorkflowView;
      if (wf.steps.length >= steps) return wf;
      last = wf;
    } else last = `${res.status} ${await res.text()}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`workflow ${id} never showed ${steps} step(s); last: ${JSON.stringify(last)}`);
}

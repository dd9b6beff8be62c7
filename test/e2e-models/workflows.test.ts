// Which workflow a model call joins (docs/decisions/0021-model-call-workflows.md): X-Workflow-Id of the caller's own
// workflows (an MCP session's, so a tool call and a model call share one tree), a traceparent of a workflow, or the
// caller's untagged-call workflow; another agent's workflow is refused. Identical model requests trip loop.sameCall,
// and a paused workflow refuses model calls too.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, fixtureManifest, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { ADMIN, adminGet, agent, modelRecords, newKey, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

const dora = newKey();
const eve = newKey();
const looper = newKey();
let fake: FakeProvider;
let gw: RunningGateway;

beforeAll(async () => {
  fake = await startFakeProvider();
  gw = await startModelGateway({
    fakeUrl: fake.url,
    servers: { fx: fixtureManifest() },
    agents: {
      dora: agent('dora', dora),
      eve: agent('eve', eve),
      looper: agent('looper', looper, { limits: { loop: { sameCall: 3, windowSeconds: 60 } } }),
    },
  });
}, 60_000);

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

const openai = (key: string, headers: Record<string, string> = {}) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0, defaultHeaders: headers });
const ask = (c: OpenAI, content = 'hello') => c.chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content }], max_tokens: 10 }).withResponse();

async function adminPost(path: string): Promise<number> {
  return (await fetch(`${gw.url}/admin/api${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN.key}` } })).status;
}

describe('joining a workflow', () => {
  it('MCP initialize says its workflow in _meta and X-Workflow-Id', async () => {
    const res = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${dora.key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    const wf = res.headers.get('x-workflow-id');
    expect(wf).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await res.json()) as { result: { _meta: Record<string, unknown> } };
    expect(body.result._meta['io.switchyard/workflowId']).toBe(wf);
  });

  it('a tool call and a model call with its X-Workflow-Id are one workflow tree', async () => {
    const mcp = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${dora.key}` } });
    await mcp.callTool({ name: 'fx__echo', arguments: { text: 'tool-then-model' } });
    const toolRow = await waitFor(async () => {
      const page = await adminGet<{ records: Array<{ workflowId: string; kind: string; tool: string }> }>(gw, '/audit?agent=dora');
      return page.records.find((r) => r.kind === 'tools/call');
    });
    const { response } = await ask(openai(dora.key, { 'x-workflow-id': toolRow.workflowId }));
    expect(response.headers.get('x-workflow-id')).toBe(toolRow.workflowId);
    const tree = await waitFor(async () => {
      const t = await adminGet<{ steps: Array<{ kind: string }> }>(gw, `/workflows/${toolRow.workflowId}`);
      return t.steps.some((s) => s.kind === 'model/call') ? t : undefined;
    });
    expect(tree.steps.map((s) => s.kind)).toEqual(['tools/call', 'model/call']);
  });

  it("another agent's workflow cannot be joined: 403 policy_denied", async () => {
    const [mine] = await modelRecords(gw, 'dora', 1);
    const err = await ask(openai(eve.key, { 'x-workflow-id': mine!.workflowId })).then(
      () => undefined,
      (e: InstanceType<typeof OpenAI.APIError>) => e,
    );
    expect(err?.status).toBe(403);
    expect((err?.error as { code: string }).code).toBe('policy_denied');
  });

  it('a traceparent whose trace id belongs to a workflow joins it', async () => {
    const traceId = 'ab'.repeat(16);
    const mcp = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${dora.key}`, traceparent: `00-${traceId}-${'01'.repeat(8)}-01` } });
    await mcp.callTool({ name: 'fx__echo', arguments: { text: 'traced' } });
    const { response } = await ask(openai(dora.key, { traceparent: `00-${traceId}-${'02'.repeat(8)}-01` }), 'traced call');
    const joined = response.headers.get('x-workflow-id')!;
    // The workflow the traced MCP session began: its tool call and this model call in one tree.
    const wf = await waitFor(async () => {
      const t = await adminGet<{ traceparent: string | null; steps: Array<{ kind: string }> }>(gw, `/workflows/${joined}`);
      return t.steps.length >= 2 ? t : undefined;
    });
    expect(wf.traceparent).toContain(traceId);
    expect(wf.steps.map((s) => s.kind)).toEqual(['tools/call', 'model/call']);
  });

  it("untagged calls of one credential share that caller's workflow", async () => {
    const c = openai(eve.key);
    const a = (await ask(c, 'one')).response.headers.get('x-workflow-id');
    const b = (await ask(c, 'two')).response.headers.get('x-workflow-id');
    expect(a).toBe(b);
  });
});

describe('loops and paused workflows', () => {
  it('identical model requests count toward loop.sameCall and trip the workflow', async () => {
    const c = openai(looper.key);
    for (let i = 0; i < 3; i++) await ask(c, 'same question');
    const err = await ask(c, 'same question').then(
      () => undefined,
      (e: InstanceType<typeof OpenAI.APIError>) => e,
    );
    expect(err?.status).toBe(429);
    expect((err?.error as { code: string }).code).toBe('loop_detected');
    // The workflow is tripped: a different request is refused too, until an admin resumes it.
    const next = await ask(c, 'different').then(
      () => undefined,
      (e: InstanceType<typeof OpenAI.APIError>) => e,
    );
    expect(next?.status).toBe(403);
    expect((next?.error as { code: string }).code).toBe('workflow_paused');
  });

  it('a paused workflow refuses model calls; resumed, it answers again', async () => {
    const c = openai(dora.key);
    const wf = (await ask(c, 'before pause')).response.headers.get('x-workflow-id')!;
    expect(await adminPost(`/workflows/${wf}/pause`)).toBe(200);
    const err = await ask(c, 'while paused').then(
      () => undefined,
      (e: InstanceType<typeof OpenAI.APIError>) => e,
    );
    expect(err?.status).toBe(403);
    expect(err?.error).toMatchObject({ code: 'workflow_paused' });
    expect(await adminPost(`/workflows/${wf}/resume`)).toBe(200);
    expect((await ask(c, 'after resume')).response.headers.get('x-workflow-id')).toBe(wf);
  });
});

// The OpenAI-compatible model route through the real `openai` client against a real gateway and the fake provider:
// chat (stream and not, tools, unknown fields passed through), embeddings, /v1/models filtered by policy, the
// gateway's key injected upstream (never the caller's), usage hidden from a stream client that did not ask,
// fallback on 500, response headers, and the audit and metrics of each model step.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, type RunningGateway } from '../helpers/gateway.js';
import { ADMIN, adminGet, agent, modelRecords, newKey, PROVIDER_KEY, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

const alice = newKey();
const narrow = newKey();
let fake: FakeProvider;
let gw: RunningGateway;

beforeAll(async () => {
  fake = await startFakeProvider();
  gw = await startModelGateway({
    fakeUrl: fake.url,
    agents: {
      alice: agent('alice', alice, { team: 'research', models: { allow: ['*'], deny: ['gpt-secret'] } }),
      narrow: agent('narrow', narrow, { models: { allow: ['gpt-fake', 'claude-*'] } }),
    },
  });
}, 60_000);

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

const client = (key: string, headers: Record<string, string> = {}) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0, defaultHeaders: headers });

describe('POST /v1/chat/completions', () => {
  it('answers through the provider, which sees the gateway key and never the caller credential', async () => {
    await fake.forget();
    const r = await client(alice.key).chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 });
    expect(r.choices[0]!.message.content).toBe('Hello from the fake provider.');
    expect(r.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7 });
    const [seen] = await fake.received();
    expect(seen!.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(JSON.stringify(seen!.headers)).not.toContain(alice.key);
    expect(seen!.body.model).toBe('fake-ok');
  });

  it('passes tools, response_format and unknown fields through untouched and relays tool calls', async () => {
    await fake.forget();
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const body = { model: 'gpt-tools', messages: [{ role: 'user' as const, content: 'weather?' }], tools, response_format: { type: 'json_object' as const }, max_tokens: 20, vendor_extension: { keep: [1, 2] } };
    const r = await client(alice.key).chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(r.choices[0]!.message.tool_calls?.[0]).toMatchObject({ function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    const [seen] = await fake.received();
    expect(seen!.body).toMatchObject({ tools, response_format: { type: 'json_object' }, vendor_extension: { keep: [1, 2] }, model: 'fake-tools' });
  });

  it('streams chunks; asks the provider for usage but hides the usage chunk from a client that did not ask', async () => {
    await fake.forget();
    const stream = await client(alice.key).chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'stream please' }], stream: true, max_tokens: 30 });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello from the fake provider.');
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(chunks.some((c) => c.usage)).toBe(false);
    const [seen] = await fake.received();
    expect(seen!.body.stream_options).toEqual({ include_usage: true });
  });

  it('shows the usage chunk to a client that asked for it', async () => {
    const stream = await client(alice.key).chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'with usage' }], stream: true, stream_options: { include_usage: true }, max_tokens: 30 });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const c of stream) if (c.usage) usage = c.usage;
    expect(usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7 });
  });

  it('falls back to the next model on a 500 and records which model answered', async () => {
    await fake.forget();
    const r = await client(alice.key).chat.completions.create({ model: 'gpt-flaky', messages: [{ role: 'user', content: 'fallback' }], max_tokens: 10 });
    expect(r.model).toBe('fake-backup');
    expect((await fake.received()).map((x) => x.body.model)).toEqual(['fake-fail500', 'fake-backup']);
    const rows = await modelRecords(gw, 'alice', 1);
    const row = rows.find((x) => x.tool === 'gpt-flaky');
    expect(row?.model).toMatchObject({ name: 'gpt-flaky', answeredBy: 'gpt-backup', upstreamModel: 'fake-backup' });
  });

  it('carries X-Workflow-Id and the remaining budget headers', async () => {
    const { response } = await client(alice.key).chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'headers' }], max_tokens: 10 }).withResponse();
    expect(response.headers.get('x-workflow-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('GET /v1/models and POST /v1/embeddings', () => {
  it('lists only the models the caller may use', async () => {
    const all = (await client(alice.key).models.list()).data.map((m) => m.id);
    expect(all).toContain('gpt-fake');
    expect(all).toContain('claude-fake');
    expect(all).not.toContain('gpt-secret');
    const few = (await client(narrow.key).models.list()).data.map((m) => m.id).sort();
    expect(few).toEqual(['claude-fake', 'claude-slow', 'claude-tools', 'gpt-fake']);
  });

  it('a hidden model and an unknown one get the same 404 model_not_found', async () => {
    const errOf = async (model: string) => {
      try {
        await client(narrow.key).chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
      } catch (err) {
        const e = err as InstanceType<typeof OpenAI.APIError>;
        return { status: e.status, error: e.error };
      }
      throw new Error('expected a refusal');
    };
    const hidden = await errOf('gpt-tools');
    const unknown = await errOf('gpt-tools-nonexistent');
    expect(hidden.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect((hidden.error as { code: string }).code).toBe('model_not_found');
    expect(JSON.stringify(hidden.error).replace('gpt-tools', 'X')).toBe(JSON.stringify(unknown.error).replace('gpt-tools-nonexistent', 'X'));
  });

  it('embeds through an openai model and counts its usage', async () => {
    const r = await client(alice.key).embeddings.create({ model: 'embed-fake', input: ['a', 'b'] });
    expect(r.data).toHaveLength(2);
    expect(r.usage.prompt_tokens).toBe(10);
  });
});

describe('audit and metrics', () => {
  it('records model, provider, upstream model, tokens, cost, finish reason and ttft, without the prompt', async () => {
    await client(alice.key).chat.completions.create({ model: 'gpt-cached', messages: [{ role: 'user', content: 'secret prompt text' }], max_tokens: 10 });
    const rows = await modelRecords(gw, 'alice', 1);
    const row = rows.find((x) => x.tool === 'gpt-cached')!;
    expect(row).toMatchObject({ kind: 'model/call', outcome: 'ok', tokens: 18, server: 'openai' });
    // 11 input of which 4 cached at $0.5/M, 7 at $1/M; 7 output at $2/M.
    expect(row.model).toMatchObject({ name: 'gpt-cached', provider: 'openai', upstreamModel: 'fake-cached', tokens: { input: 11, output: 7, cachedInput: 4 }, finishReason: 'stop' });
    expect(row.model!.costUsd).toBeCloseTo((7 * 1 + 4 * 0.5 + 7 * 2) / 1e6, 12);
    expect(typeof row.model!.ttftMs).toBe('number');
    expect(JSON.stringify(row)).not.toContain('secret prompt text');
  });

  it('counts tokens and cost by model, agent and team in /metrics', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/switchyard_model_tokens_total\{model="gpt-fake",agent="alice",team="research",type="input"\} \d+/);
    expect(text).toMatch(/switchyard_model_cost_usd_total\{model="gpt-fake",agent="alice",team="research"\} [0-9.e-]+/);
  });

  it('the spend endpoint sums tokens and cost per model, agent and team', async () => {
    const rows = await modelRecords(gw, 'alice', 8);
    const byModel = await adminGet<{ groups: Array<{ key: string; calls: number; tokens: { total: number }; costUsd: number }>; total: { calls: number; costUsd: number } }>(gw, '/spend?by=model');
    const fakeRows = rows.filter((r) => r.tool === 'gpt-fake');
    const fakeGroup = byModel.groups.find((g) => g.key === 'gpt-fake')!;
    expect(fakeGroup.calls).toBe(fakeRows.length);
    expect(fakeGroup.tokens.total).toBe(fakeRows.reduce((n, r) => n + (r.tokens ?? 0), 0));
    expect(fakeGroup.costUsd).toBeCloseTo(fakeRows.reduce((n, r) => n + r.model!.costUsd, 0), 12);
    const byTeam = await adminGet<{ groups: Array<{ key: string | null; calls: number }> }>(gw, '/spend?by=team');
    expect(byTeam.groups.find((g) => g.key === 'research')?.calls).toBe(rows.length);
    const byAgent = await adminGet<{ groups: Array<{ key: string; calls: number }> }>(gw, `/spend?by=agent&from=${new Date(Date.now() - 3_600_000).toISOString()}`);
    expect(byAgent.groups.find((g) => g.key === 'alice')?.calls).toBe(rows.length);
    const bad = await fetch(`${gw.url}/admin/api/spend?by=colour`, { headers: { authorization: `Bearer ${ADMIN.key}` } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/by must be one of model, agent, team/);
  });

  it('the workflow tree holds the model steps', async () => {
    const rows = await modelRecords(gw, 'alice', 1);
    const tree = await adminGet<{ steps: Array<{ kind: string; model?: { name: string } }> }>(gw, `/workflows/${rows[0]!.workflowId}`);
    expect(tree.steps.some((s) => s.kind === 'model/call' && s.model?.name)).toBe(true);
  });
});

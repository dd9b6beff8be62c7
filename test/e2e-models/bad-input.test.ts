// Bad input on the model route (issue 13): each case gets a clear error in the route's own shape, and none loses a
// charge or leaves a reservation held: afterwards the workflow budget left equals its limit minus what the trail
// charged, to the token.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { countText, loadTokenizer } from '../../src/upstream/models/estimate.js';
import { agent, modelRecords, newKey, PROVIDER_KEY, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

const bad = newKey();
const BUDGET = 1_000_000;
let fake: FakeProvider;
let gw: RunningGateway;
let workflowId: string;

beforeAll(async () => {
  fake = await startFakeProvider();
  gw = await startModelGateway({
    fakeUrl: fake.url,
    agents: { bad: agent('bad', bad, { canSetWorkflow: true, limits: { workflow: { tokens: BUDGET } } }) },
    gatewayYaml: { maxBodyBytes: 4096 },
  });
  workflowId = crypto.randomUUID();
}, 60_000);

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

function post(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${bad.key}`, 'content-type': 'application/json', 'x-workflow-id': workflowId, ...headers }, body });
}

async function expectError(res: Response, status: number, code: string, says: RegExp): Promise<Record<string, unknown>> {
  const body = (await res.json()) as { error: { message: string; code: string; type: string } };
  expect(res.status).toBe(status);
  expect(body.error.code).toBe(code);
  expect(body.error.message).toMatch(says);
  return body;
}

const chat = (extra: Record<string, unknown>) => JSON.stringify({ model: 'gpt-fake', messages: [{ role: 'user', content: 'x' }], max_tokens: 20, ...extra });

describe('requests the gateway refuses itself (nothing reaches the provider)', () => {
  it('malformed JSON', async () => {
    await expectError(await post('/v1/chat/completions', '{"model": "gpt-fake", '), 400, 'invalid_request', /not valid JSON/);
  });
  it('a body that is not an object', async () => {
    await expectError(await post('/v1/chat/completions', '[1,2]'), 400, 'invalid_request', /JSON object/);
  });
  it('missing model', async () => {
    await expectError(await post('/v1/chat/completions', JSON.stringify({ messages: [] })), 400, 'invalid_request', /`model` is missing/);
  });
  it('messages not an array', async () => {
    await expectError(await post('/v1/chat/completions', JSON.stringify({ model: 'gpt-fake', messages: 'hello' })), 400, 'invalid_request', /`messages` must be an array/);
  });
  it('stream not a boolean', async () => {
    await expectError(await post('/v1/chat/completions', chat({ stream: 'yes' })), 400, 'invalid_request', /`stream` must be true or false/);
  });
  it('max_tokens not a whole number', async () => {
    await expectError(await post('/v1/chat/completions', chat({ max_tokens: -3 })), 400, 'invalid_request', /max_tokens/);
  });
  it('a body over maxBodyBytes is a 413', async () => {
    const res = await post('/v1/chat/completions', chat({ padding: 'x'.repeat(5000) }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/larger than 4096 bytes/);
  });
  it('embeddings without input', async () => {
    await expectError(await post('/v1/embeddings', JSON.stringify({ model: 'embed-fake' })), 400, 'invalid_request', /`input`/);
  });
  it('a wrong method names the right one', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${bad.key}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
  it('none of these reached the provider', async () => {
    expect((await fake.received()).length).toBe(0);
  });
});

describe('providers that fail', () => {
  it('a provider that answers garbage: 502 upstream_unavailable', async () => {
    await expectError(await post('/v1/chat/completions', chat({ model: 'gpt-garbage' })), 502, 'upstream_unavailable', /not a JSON object/);
  });

  it('a provider stream that stops mid-chunk ends the stream; the step is an error charged with an estimate', async () => {
    const res = await post('/v1/chat/completions', chat({ model: 'gpt-cut', stream: true }));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('Hel');
    expect(text).not.toContain('[DONE]');
    const rows = await modelRecords(gw, 'bad', 2);
    const cut = rows.find((r) => r.tool === 'gpt-cut')!;
    expect(cut).toMatchObject({ outcome: 'error', reason: 'upstream_unavailable' });
    expect(cut.model).toMatchObject({ tokensEstimated: true });
    expect(cut.model!.tokens!.output).toBeGreaterThan(0);
  });

  it('a provider that hangs: 504 upstream_timeout after the model timeoutMs', async () => {
    const started = Date.now();
    await expectError(await post('/v1/chat/completions', chat({ model: 'gpt-hang' })), 504, 'upstream_timeout', /did not answer within 1500 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });

  it("an upstream 401 (the gateway's key is wrong): the log says so, the agent gets upstream_unavailable, the key leaks nowhere", async () => {
    const res = await post('/v1/chat/completions', chat({ model: 'gpt-401' }));
    const raw = await res.text();
    expect(res.status).toBe(502);
    expect(JSON.parse(raw)).toMatchObject({ error: { code: 'upstream_unavailable' } });
    expect(raw).not.toContain(PROVIDER_KEY);
    const line = await waitFor(() => gw.logRecords().find((l) => typeof l.msg === 'string' && l.msg.includes("refused the gateway's API key")), { what: 'the 401 log line' });
    expect(String(line.msg)).toContain('fix models[].apiKey');
    expect(gw.logs.join('\n')).not.toContain(PROVIDER_KEY);
  });

  it("a failing model's circuit breaker opens: further calls are refused without reaching the provider", async () => {
    for (let i = 0; i < 2; i++) await expectError(await post('/v1/chat/completions', chat({ model: 'gpt-broken' })), 502, 'upstream_unavailable', /answered HTTP 500/);
    const before = (await fake.received()).filter((r) => r.body.model === 'fake-fail500-broken').length;
    await expectError(await post('/v1/chat/completions', chat({ model: 'gpt-broken' })), 502, 'upstream_unavailable', /circuit breaker of model 'gpt-broken' is open/);
    expect((await fake.received()).filter((r) => r.body.model === 'fake-fail500-broken').length).toBe(before);
  });

  it("a provider's own 400 reaches the client as it said it", async () => {
    const res = await post('/v1/chat/completions', chat({ model: 'gpt-bad400' }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { message: 'provider says: bad temperature', param: 'temperature' } });
  });

  it('no usage from the provider: tokens estimated with the tokenizer and marked', async () => {
    const r = await new OpenAI({ apiKey: bad.key, baseURL: `${gw.url}/v1`, maxRetries: 0, defaultHeaders: { 'x-workflow-id': workflowId } }).chat.completions.create({ model: 'gpt-nousage', messages: [{ role: 'user', content: 'x' }], max_tokens: 20 });
    expect(r.usage).toBeUndefined();
    const rows = await modelRecords(gw, 'bad', 6);
    await loadTokenizer();
    expect(rows.find((x) => x.tool === 'gpt-nousage')!.model).toMatchObject({ tokensEstimated: true, tokens: { output: countText('Hello from the fake provider.') } });
  });

  it('afterwards no reservation is held: budget left = limit - what the trail charged', async () => {
    const res = await post('/v1/chat/completions', chat({}));
    expect(res.status).toBe(200);
    const left = Number(res.headers.get('x-budget-remaining-tokens'));
    const rows = await modelRecords(gw, 'bad', 7);
    const charged = rows.filter((r) => r.workflowId === workflowId).reduce((n, r) => n + (r.tokens ?? 0), 0);
    expect(left).toBe(BUDGET - charged);
  });
});

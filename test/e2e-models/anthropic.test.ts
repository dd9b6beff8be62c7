// The Anthropic Messages route through the real `@anthropic-ai/sdk` client (credential in x-api-key): stream and
// not, tool use, the gateway's key injected upstream as x-api-key, usage from message_start/message_delta, the
// Anthropic error shape for refusals, and a model of the other format answered with a 400 naming its route.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, type RunningGateway } from '../helpers/gateway.js';
import { agent, modelRecords, newKey, PROVIDER_KEY, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

const carol = newKey();
let fake: FakeProvider;
let gw: RunningGateway;

beforeAll(async () => {
  fake = await startFakeProvider();
  gw = await startModelGateway({ fakeUrl: fake.url, agents: { carol: agent('carol', carol, { models: { allow: ['claude-*', 'gpt-fake'] } }) } });
}, 60_000);

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

const anthropic = (key = carol.key) => new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0 });

describe('POST /v1/messages', () => {
  it('answers with the gateway key upstream (x-api-key) and the caller key nowhere', async () => {
    await fake.forget();
    const msg = await anthropic().messages.create({ model: 'claude-fake', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    expect(msg.content[0]).toMatchObject({ type: 'text', text: 'Hello from the fake provider.' });
    expect(msg.usage).toMatchObject({ input_tokens: 11, output_tokens: 7 });
    const [seen] = await fake.received();
    expect(seen!.headers['x-api-key']).toBe(PROVIDER_KEY);
    // The client's own anthropic-version is passed on (the SDK's; 2023-06-01 when a client sends none).
    expect(seen!.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(JSON.stringify(seen!.headers)).not.toContain(carol.key);
    expect(seen!.body.model).toBe('fake-claude');
  });

  it('streams events as they arrive and records the usage they carry', async () => {
    const stream = anthropic().messages.stream({ model: 'claude-fake', max_tokens: 64, messages: [{ role: 'user', content: 'stream' }] });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    expect(text).toBe('Hello from the fake provider.');
    expect(final.usage.output_tokens).toBe(7);
    const rows = await modelRecords(gw, 'carol', 1);
    expect(rows.some((r) => r.tool === 'claude-fake' && r.tokens === 18 && r.model?.finishReason === 'end_turn')).toBe(true);
  });

  it('relays tool use', async () => {
    const msg = await anthropic().messages.create({
      model: 'claude-tools',
      max_tokens: 64,
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      messages: [{ role: 'user', content: 'weather?' }],
    });
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.content[0]).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { city: 'Paris' } });
  });

  it('refuses in the Anthropic error shape: an unknown model is a 404 not_found_error with reason model_not_found', async () => {
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': carol.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-none', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' }, switchyard: { reason: 'model_not_found' } });
  });

  it('an OpenAI model on /v1/messages (and an Anthropic one on chat completions) is a 400 naming the route', async () => {
    const err = await anthropic()
      .messages.create({ model: 'gpt-fake', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
      .then(() => undefined, (e: InstanceType<typeof Anthropic.APIError>) => e);
    expect(err?.status).toBe(400);
    expect(err?.message).toContain('POST /v1/chat/completions');
    const other = await new OpenAI({ apiKey: carol.key, baseURL: `${gw.url}/v1`, maxRetries: 0 }).chat.completions
      .create({ model: 'claude-fake', messages: [{ role: 'user', content: 'x' }] })
      .then(() => undefined, (e: InstanceType<typeof OpenAI.APIError>) => e);
    expect(other?.status).toBe(400);
    expect(other?.message).toContain('POST /v1/messages');
  });

  it('an unauthenticated call is a 401 in the Anthropic shape', async () => {
    const err = await anthropic('not-a-key')
      .messages.create({ model: 'claude-fake', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
      .then(() => undefined, (e: InstanceType<typeof Anthropic.APIError>) => e);
    expect(err?.status).toBe(401);
    expect(err?.error).toMatchObject({ type: 'error', error: { type: 'authentication_error' }, switchyard: { reason: 'unauthenticated' } });
  });

  it('GET /v1/models with anthropic-version lists Anthropic models in their shape', async () => {
    const page = await anthropic().models.list();
    expect(page.data.map((m) => m.id).sort()).toEqual(['claude-fake', 'claude-slow', 'claude-tools']);
  });
});

// LangChain's ChatOpenAI pointed at the gateway with configuration.baseURL: invoke and stream, governed like any call.
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, type RunningGateway } from '../helpers/gateway.js';
import { agent, modelRecords, newKey, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

const lc = newKey();
let fake: FakeProvider;
let gw: RunningGateway;

beforeAll(async () => {
  fake = await startFakeProvider();
  gw = await startModelGateway({ fakeUrl: fake.url, agents: { lc: agent('lc', lc) } });
}, 60_000);

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

describe('LangChain ChatOpenAI through the gateway', () => {
  const model = () => new ChatOpenAI({ model: 'gpt-fake', apiKey: lc.key, maxRetries: 0, maxTokens: 32, configuration: { baseURL: `${gw.url}/v1` } });

  it('invokes and streams', async () => {
    const answer = await model().invoke('hi');
    expect(answer.content).toBe('Hello from the fake provider.');
    let streamed = '';
    for await (const chunk of await model().stream('stream it')) streamed += String(chunk.content);
    expect(streamed).toBe('Hello from the fake provider.');
    const rows = await modelRecords(gw, 'lc', 2);
    expect(rows.every((r) => r.outcome === 'ok' && r.tokens === 18)).toBe(true);
  });
});

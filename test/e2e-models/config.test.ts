// gateway.yaml `models` as an operator meets it: `switchyard validate` reports model problems as file:line, a
// changed file is hot-reloaded (a broken one keeps the models in force), and audit.modelBodies keeps prompts and
// completions only as asked (a digest, or the redacted bodies).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCommand, scratch, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { ADMIN, agent, fakeModels, modelRecords, newKey, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

let fake: FakeProvider;

beforeAll(async () => {
  fake = await startFakeProvider();
});

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

describe('switchyard validate', () => {
  it('reports a fallback that is not a model, a duplicate name and a bad provider, each as file:line', async () => {
    const dir = scratch('switchyard-models-validate-');
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      toYaml({
        models: [
          { name: 'a', provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1', fallbacks: ['missing', 'c'] },
          { name: 'a', provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1' },
          { name: 'c', provider: 'anthropic', baseUrl: 'http://127.0.0.1:1' },
          { name: 'd', provider: 'gemini', baseUrl: 'http://127.0.0.1:1' },
        ],
      }),
    );
    const r = await runCommand(process.execPath, [CLI, 'validate', file], { cwd: dir });
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/gateway\.yaml:\d+: .*provider/);
    // The schema problem is reported first; fix it and the cross-checks speak.
    writeFileSync(
      file,
      toYaml({
        models: [
          { name: 'a', provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1', fallbacks: ['missing', 'c'] },
          { name: 'a', provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1' },
          { name: 'c', provider: 'anthropic', baseUrl: 'http://127.0.0.1:1' },
        ],
      }),
    );
    const again = await runCommand(process.execPath, [CLI, 'validate', file], { cwd: dir });
    expect(again.code).toBe(1);
    const text = again.stdout + again.stderr;
    expect(text).toMatch(/gateway\.yaml:\d+: fallback 'missing' of model 'a' is not a model in this file/);
    expect(text).toMatch(/gateway\.yaml:\d+: fallback 'c' is a anthropic model but 'a' is openai/);
    expect(text).toMatch(/gateway\.yaml:\d+: model 'a' is listed twice/);
  });
});

describe('hot reload and model bodies', () => {
  const key = newKey();
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startModelGateway({ fakeUrl: fake.url, agents: { ops: agent('ops', key) }, gatewayYaml: { audit: { modelBodies: 'full' } } });
  }, 60_000);

  const client = () => new OpenAI({ apiKey: key.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const listed = async () => (await client().models.list()).data.map((m) => m.id);
  const yaml = (models: Record<string, unknown>[], extra: Record<string, unknown> = {}) => toYaml({ admin: { tokens: [ADMIN.hash] }, audit: { modelBodies: 'full' }, models, ...extra });

  it('full bodies: the prompt and the completion are in the trail', async () => {
    await client().chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'keep this prompt' }], max_tokens: 5 });
    const [row] = await modelRecords(gw, 'ops', 1);
    expect(JSON.stringify(row!.args)).toContain('keep this prompt');
    expect(row!.model!.bodies).toEqual({ completion: 'Hello from the fake provider.' });
  });

  it('a new model in gateway.yaml is served without a restart; a broken file keeps the models in force', async () => {
    expect(await listed()).not.toContain('gpt-added');
    writeFileSync(join(gw.dir, 'gateway.yaml'), yaml([...fakeModels(fake.url), { name: 'gpt-added', baseUrl: `${fake.url}/v1`, model: 'fake-ok' }]));
    await waitFor(async () => ((await listed()).includes('gpt-added') ? true : undefined), { what: 'gpt-added listed', timeoutMs: 5000 });
    const r = await client().chat.completions.create({ model: 'gpt-added', messages: [{ role: 'user', content: 'new' }], max_tokens: 5 });
    expect(r.choices[0]!.message.content).toBe('Hello from the fake provider.');

    writeFileSync(join(gw.dir, 'gateway.yaml'), yaml([{ name: 'broken', baseUrl: 'not a url' }]));
    await waitFor(() => gw.logRecords().find((l) => String(l.msg).includes('the models in force stay')), { what: 'the broken-file log line', timeoutMs: 5000 });
    expect(await listed()).toContain('gpt-added');
  });
});

describe('hashed bodies', () => {
  it('hash: only digests of prompt and completion are stored', async () => {
    const key = newKey();
    const gw = await startModelGateway({ fakeUrl: fake.url, agents: { h: agent('h', key) }, gatewayYaml: { audit: { modelBodies: 'hash' } } });
    await new OpenAI({ apiKey: key.key, baseURL: `${gw.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'hash this prompt' }], max_tokens: 5 });
    const [row] = await modelRecords(gw, 'h', 1);
    expect(JSON.stringify(row)).not.toContain('hash this prompt');
    expect(row!.args).toMatchObject({ promptSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(row!.model!.bodies).toMatchObject({ completionSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  }, 60_000);
});

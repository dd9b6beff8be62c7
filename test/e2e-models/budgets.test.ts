// Model budgets at admission (issue 13): the estimate (input tokens counted with the tokenizer plus max_tokens) is
// reserved before forwarding and reconciled with the provider's usage. Twenty parallel calls against a budget that
// holds ten: ten answered, ten refused, spend = the ten answers' usage. A client that leaves mid-stream is charged;
// perMinute.tokens acts as a TPM limit with Retry-After; a delegated sub-agent spends its root's workflow budget.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateInputTokens, loadTokenizer, requestedOutputTokens } from '../../src/upstream/models/estimate.js';
import { stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { adminGet, agent, modelRecords, newKey, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';
import { delegate } from '../delegation/setup.js';

const USAGE_PER_CALL = 18; // the fake provider's 11 input + 7 output
const BODY = { model: 'gpt-fake', messages: [{ role: 'user' as const, content: 'count me' }], max_tokens: 100 };
let reservePerCall: number;

const wf = newKey();
const tpm = newKey();
const leaver = newKey();
const root = newKey();
const usd = newKey();
let fake: FakeProvider;
let gw: RunningGateway;

beforeAll(async () => {
  await loadTokenizer();
  reservePerCall = estimateInputTokens('chat', BODY) + requestedOutputTokens('chat', BODY, 8192);
  fake = await startFakeProvider();
  gw = await startModelGateway({
    fakeUrl: fake.url,
    agents: {
      wf: agent('wf', wf, { limits: { workflow: { tokens: 10 * reservePerCall } } }),
      tpm: agent('tpm', tpm, { limits: { perMinute: { tokens: 2 * reservePerCall } } }),
      leaver: agent('leaver', leaver),
      root: agent('root', root, { delegation: { agents: ['sub'] }, limits: { workflow: { tokens: 3 * reservePerCall } } }),
      sub: agent('sub', newKey(), {}),
      usd: agent('usd', usd, { limits: { perDay: { costUsd: 0.0003 } } }),
    },
  });
}, 60_000);

afterAll(async () => {
  await stopAll();
  await fake?.stop();
});

const client = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 });

async function attempt(c: OpenAI, body: OpenAI.ChatCompletionCreateParamsNonStreaming = BODY) {
  try {
    const { data, response } = await c.chat.completions.create(body).withResponse();
    return { ok: true as const, usage: data.usage!, headers: response.headers };
  } catch (err) {
    const e = err as InstanceType<typeof OpenAI.APIError> & { error: Record<string, unknown> };
    return { ok: false as const, status: e.status, body: e.error as { code?: string }, raw: e, headers: e.headers };
  }
}

describe('reservation at admission', () => {
  it('twenty parallel calls against a budget of ten: ten answered, ten refused, spend equals the answers', async () => {
    const c = client(wf.key);
    // The provider holds every answer until all twenty are either refused or waiting there, so no reconcile can
    // free budget for a later call: exactly what the reservation admitted is what reaches the provider.
    let refusedSoFar = 0;
    const calls = Array.from({ length: 20 }, () =>
      attempt(c, { ...BODY, model: 'gpt-held' }).then((r) => {
        if (!r.ok) refusedSoFar++;
        return r;
      }),
    );
    await waitFor(async () => refusedSoFar + (await fake.held()) === 20, { timeoutMs: 20_000, what: 'every call refused or held at the provider' });
    expect(await fake.held()).toBe(10);
    await fake.release();
    const results = await Promise.all(calls);
    const answered = results.filter((r) => r.ok);
    const refused = results.filter((r) => !r.ok);
    expect(answered).toHaveLength(10);
    expect(refused).toHaveLength(10);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.body.code).toBe('budget_exceeded');
    }
    const rows = await modelRecords(gw, 'wf', 20);
    const spent = rows.filter((r) => r.outcome === 'ok').reduce((n, r) => n + (r.tokens ?? 0), 0);
    const usageSum = answered.reduce((n, r) => n + (r.ok ? r.usage.total_tokens : 0), 0);
    expect(spent).toBe(usageSum);
    expect(usageSum).toBe(10 * USAGE_PER_CALL);
    expect(rows.filter((r) => r.outcome === 'refused')).toHaveLength(10);

    // Reconciled: what the ten did not use is free again, so one more call fits and its headers say what is left.
    const after = await attempt(c);
    expect(after.ok).toBe(true);
    if (!after.ok) return;
    const left = Number(after.headers.get('x-budget-remaining-tokens'));
    expect(left).toBe(10 * reservePerCall - 11 * USAGE_PER_CALL);
  });

  it('the refusal names the limit in the switchyard member', async () => {
    const c = client(wf.key);
    // Fill what is left, then one more is refused with limit, used and max.
    for (let i = 0; i < 60; i++) if (!(await attempt(c)).ok) break;
    const r = await attempt(c);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const sw = (r.raw.error as unknown as { switchyard?: Record<string, unknown> } | undefined)?.switchyard ?? (await refusalBody(c));
    expect(sw).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.tokens', max: 10 * reservePerCall });
    expect(typeof sw.used).toBe('number');
    expect(typeof sw.workflowId).toBe('string');
  });

  it('perMinute.tokens is a TPM limit: refused with 429 rate_limited and Retry-After', async () => {
    const c = client(tpm.key);
    // Each answer uses 18 of its reservation: calls fit until what is used leaves no room for one more reservation.
    const fitting = Math.floor((2 * reservePerCall - reservePerCall) / USAGE_PER_CALL) + 1;
    for (let i = 0; i < fitting; i++) expect((await attempt(c)).ok).toBe(true);
    const over = await attempt(c);
    expect(over.ok).toBe(false);
    if (over.ok) return;
    expect(over.status).toBe(429);
    expect(over.body.code).toBe('rate_limited');
    expect(Number(over.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(over.headers?.get('retry-after'))).toBeLessThanOrEqual(60);
  });

  it('costUsd: a daily dollar budget refuses once spent', async () => {
    // $1/M input, $2/M output: each answer costs 11e-6 + 14e-6 = $0.000025; the reservation is larger.
    const c = client(usd.key);
    let answered = 0;
    let refusal: Record<string, unknown> | undefined;
    let lastLeft = Infinity;
    for (let i = 0; i < 30 && !refusal; i++) {
      const r = await attempt(c, { ...BODY, max_tokens: 10 });
      if (r.ok) {
        answered++;
        // The dollars left shrink by each answer's cost ($0.000025), never by its larger reservation.
        const left = Number(r.headers.get('x-budget-remaining-usd'));
        expect(left).toBeCloseTo(0.0003 - answered * 0.000025, 6);
        expect(left).toBeLessThan(lastLeft);
        lastLeft = left;
      } else refusal = r.body;
    }
    expect(answered).toBeGreaterThan(0);
    expect(refusal).toMatchObject({ code: 'budget_exceeded' });
  });
});

/** The raw body of one more refused call (the SDK keeps only `error`). */
async function refusalBody(c: OpenAI): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${c.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(BODY) });
  return ((await res.json()) as { switchyard: Record<string, unknown> }).switchyard;
}

describe('streams', () => {
  it('a client that disconnects mid-stream is still charged the provider usage', async () => {
    const controller = new AbortController();
    const c = client(leaver.key);
    const stream = await c.chat.completions.create({ model: 'gpt-slow', messages: [{ role: 'user', content: 'long answer' }], stream: true, max_tokens: 100 }, { signal: controller.signal });
    let seen = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) seen++;
        if (seen === 2) {
          controller.abort();
          break;
        }
      }
    } catch {
      // the abort ends the iteration
    }
    // The client left after two of the forty pieces.
    expect(seen).toBe(2);
    const [row] = await modelRecords(gw, 'leaver', 1);
    expect(row).toMatchObject({ outcome: 'ok', tokens: USAGE_PER_CALL });
    expect(row!.model).toMatchObject({ tokens: { input: 11, output: 7, cachedInput: 0 } });
    expect(row!.model!.tokensEstimated).toBeUndefined();
  });
});

describe('delegation', () => {
  it('a delegated sub-agent spends the root workflow budget and is refused when it is spent', async () => {
    const childToken = await delegate(gw, root.key, 'sub');
    const c = client(childToken);
    const results = [];
    // Root's workflow holds 3 reservations; each answer uses 18 of one, so the budget lasts a known number of calls.
    const calls = Math.floor((3 * reservePerCall - reservePerCall) / USAGE_PER_CALL) + 2;
    for (let i = 0; i < calls; i++) results.push(await attempt(c));
    const ok = results.filter((r) => r.ok).length;
    expect(ok).toBeGreaterThanOrEqual(3);
    const refused = results.find((r) => !r.ok);
    expect(refused && !refused.ok ? refused.body.code : undefined).toBe('budget_exceeded');
    expect(results.at(-1)!.ok).toBe(false);
    const rows = await modelRecords(gw, 'sub', calls);
    const workflows = new Set(rows.map((r) => r.workflowId));
    expect(workflows.size).toBe(1);
    const tree = await adminGet<{ agent: string; steps: Array<{ agent: string; kind: string }> }>(gw, `/workflows/${[...workflows][0]}`);
    expect(tree.agent).toBe('root');
    expect(tree.steps.filter((s) => s.kind === 'model/call' && s.agent === 'sub')).toHaveLength(calls);
  });
});

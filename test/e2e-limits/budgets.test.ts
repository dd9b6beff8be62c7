// Workflow budgets through a real SDK client (issue 5): the call that crosses limits.workflow.toolCalls or .steps is
// refused with -32030 budget_exceeded, limit and used, and never reaches the upstream; the calls before it succeed.
// 20 parallel calls against a budget of 10 let exactly 10 through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient } from '../helpers/gateway.js';
import {
  admin,
  call,
  launchFixtureHome,
  localAgent,
  readStats,
  refusalOf,
  runTag,
  stopEverything,
  upstreamCallsWithText,
  type GatewayHome,
  type LaunchedGateway,
} from '../helpers/audit-harness.js';

const run = runTag();

afterAll(stopEverything);

function rpcError(err: unknown): { code: number; data: Record<string, unknown> } {
  const e = err as { code?: number; data?: Record<string, unknown> };
  return { code: e.code ?? NaN, data: e.data ?? {} };
}

describe('limits.workflow', () => {
  let home: GatewayHome;
  let gw: LaunchedGateway;

  beforeAll(async () => {
    ({ home, gw } = await launchFixtureHome(localAgent({ workflow: { steps: 5, toolCalls: 3 } })));
  });

  it('toolCalls: the fourth tool call is refused before the upstream; the first three succeed', async () => {
    const client = await connectClient(gw.mcpUrl);
    for (let i = 1; i <= 3; i++) {
      const r = await call(client, 'fx__echo', { text: `tc${i}-${run}` });
      expect(r.ok, JSON.stringify(r)).toBe(true);
    }
    const over = refusalOf(await call(client, 'fx__echo', { text: `tc4-${run}` }));
    expect(over.code).toBe(-32030);
    expect(over.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.toolCalls', used: 3, max: 3 });
    expect(typeof over.data.workflowId).toBe('string');
    for (let i = 1; i <= 3; i++) expect(upstreamCallsWithText(home.statsFile, `tc${i}-${run}`)).toHaveLength(1);
    expect(upstreamCallsWithText(home.statsFile, `tc4-${run}`)).toHaveLength(0);

    // Refused calls do not count: the next one is refused with the same figures.
    const again = refusalOf(await call(client, 'fx__add', { a: 1, b: 2 }));
    expect(again.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.toolCalls', used: 3 });

    // The budget is per workflow: a new session starts a new one.
    const fresh = await connectClient(gw.mcpUrl);
    expect((await call(fresh, 'fx__echo', { text: `fresh-${run}` })).ok).toBe(true);
  });

  it('steps: prompts and resource reads count as steps; the sixth step is refused before the upstream', async () => {
    const client = await connectClient(gw.mcpUrl);
    for (let i = 1; i <= 3; i++) expect((await call(client, 'fx__echo', { text: `st${i}-${run}` })).ok).toBe(true);
    const promptsBefore = readStats(home.statsFile).filter((l) => l.method === 'prompts/get').length;
    const readsBefore = readStats(home.statsFile).filter((l) => l.method === 'resources/read').length;

    const prompt = await client.getPrompt({ name: 'fx__simple' });
    expect(prompt.messages.length).toBeGreaterThan(0);
    const read = await client.readResource({ uri: 'fixture://static/hello' });
    expect(JSON.stringify(read.contents)).toContain('Hello from the feature fixture.');

    const refused = await client.getPrompt({ name: 'fx__simple' }).then(
      () => undefined,
      (err: unknown) => rpcError(err),
    );
    expect(refused).toBeDefined();
    expect(refused!.code).toBe(-32030);
    expect(refused!.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.steps', used: 5, max: 5 });
    const readRefused = await client.readResource({ uri: 'fixture://static/hello' }).then(
      () => undefined,
      (err: unknown) => rpcError(err),
    );
    expect(readRefused?.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.steps' });
    expect(readStats(home.statsFile).filter((l) => l.method === 'prompts/get').length).toBe(promptsBefore + 1);
    expect(readStats(home.statsFile).filter((l) => l.method === 'resources/read').length).toBe(readsBefore + 1);

    // The refusals are steps in the trail, with their reason.
    const wf = refused!.data.workflowId as string;
    const { body } = await admin<{ steps: Array<{ step: number; kind: string; outcome: string; reason: string | null }> }>(gw.url, `/workflows/${wf}`);
    expect(body.steps.map((s) => [s.kind, s.outcome, s.reason])).toEqual([
      ['tools/call', 'ok', null],
      ['tools/call', 'ok', null],
      ['tools/call', 'ok', null],
      ['prompts/get', 'ok', null],
      ['resources/read', 'ok', null],
      ['prompts/get', 'refused', 'budget_exceeded'],
      ['resources/read', 'refused', 'budget_exceeded'],
    ]);
  });
});

describe('concurrency', () => {
  it('20 parallel calls against a toolCalls budget of 10 let exactly 10 through', async () => {
    const { home, gw } = await launchFixtureHome(localAgent({ workflow: { toolCalls: 10 } }));
    const client = await connectClient(gw.mcpUrl);
    const texts = Array.from({ length: 20 }, (_, i) => `par${i}-${run}`);
    const outcomes = await Promise.all(texts.map((text) => call(client, 'fx__echo', { text })));
    const ok = outcomes.filter((o) => o.ok);
    const refused = outcomes.filter((o) => !o.ok);
    expect(ok).toHaveLength(10);
    expect(refused).toHaveLength(10);
    for (const r of refused) expect(!r.ok && [r.code, r.data.reason, r.data.limit]).toEqual([-32030, 'budget_exceeded', 'workflow.toolCalls']);
    // Exactly the acknowledged ten reached the upstream.
    const reached = texts.filter((t) => upstreamCallsWithText(home.statsFile, t).length > 0);
    expect(reached).toHaveLength(10);
    expect(reached.sort()).toEqual(texts.filter((_, i) => outcomes[i]!.ok).sort());
  });
});

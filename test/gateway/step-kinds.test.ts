// Every Step kind goes through the one pipeline function: MCP tools/call and prompts/get (a real stdio upstream),
// A2A messages (with the agent's breaker), token exchanges (with the endpoint's own checks) and model calls (the
// budget reserved at admission, a streamed answer relayed before the step is reconciled and recorded).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { closeDatabase, openDatabase } from '../../src/audit/index.js';
import { loadGatewayConfig } from '../../src/config/index.js';
import type { AgentManifest, ServerManifest } from '../../src/config/types.js';
import { A2aSteps } from '../../src/downstream/a2a-steps.js';
import { GuardChain } from '../../src/gateway/chain.js';
import { dispatch } from '../../src/gateway/dispatch.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { createLimitsGuard } from '../../src/gateway/guards/limits.js';
import { MemoryWorkflows } from '../../src/gateway/memory-workflows.js';
import { ModelSteps } from '../../src/gateway/model-steps.js';
import { runPipeline } from '../../src/gateway/pipeline.js';
import type { Caller, ModelOutcome, ModelStepInfo, Step, StepKind, StepOutcome } from '../../src/gateway/types.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { Authenticator } from '../../src/identity/authenticate.js';
import { exchange, isExchangeFailure } from '../../src/identity/delegation.js';
import { openDelegation } from '../../src/identity/delegation-runtime.js';
import { JwtVerifier } from '../../src/identity/jwt.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { BreakerBoard } from '../../src/limits/breaker.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { memoryA2aContext } from '../../src/upstream/a2a-context.js';
import type { RpcResponse } from '../../src/util/jsonrpc.js';
import { FIXTURE, scratch, stopAll } from '../helpers/gateway.js';
import { agent, agentMap } from '../identity/helpers.js';
import { settled } from '../helpers/sync.js';

vi.mock('../../src/gateway/pipeline.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/gateway/pipeline.js')>();
  return { ...real, runPipeline: vi.fn(real.runPipeline) };
});

const piped = vi.mocked(runPipeline);
const kindsPiped = (): StepKind[] => piped.mock.calls.map(([, s]) => s.kind);
const log = pino({ level: 'silent' });
const cleanups: Array<() => unknown> = [];

beforeEach(() => {
  piped.mockClear();
});
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await stopAll();
});

function recorder() {
  const recorded: Array<[Step, StepOutcome]> = [];
  return { recorded, sink: { record: (s: Step, o: StepOutcome) => void recorded.push([{ ...s }, o]) } };
}

describe('one pipeline for every Step kind', () => {
  it('MCP tools/call and prompts/get', async () => {
    const { config } = loadGatewayConfig(undefined, {}, { cwd: scratch('switchyard-kinds-') });
    const { recorded, sink } = recorder();
    const gw = new Gateway({ config, log, workflows: new MemoryWorkflows(), sinks: [sink] });
    cleanups.push(() => gw.close());
    const fx: ServerManifest = {
      name: 'fx',
      transport: 'stdio',
      command: process.execPath,
      args: [FIXTURE, '--prompts', '1'],
      env: {},
      headers: {},
      tools: { include: ['*'], exclude: [] },
      timeoutMs: 30_000,
      connectTimeoutMs: 30_000,
      idleSeconds: 600,
      breaker: { failures: 5, cooldownSeconds: 10 },
      session: 'per-client',
      required: false,
      source: { file: '/virtual/servers.d/fx.yaml', line: 1 },
    };
    await gw.applyServers(new Map([['fx', fx]]));
    const { session } = await gw.initialize({}, { agentId: 'local', principal: 'local', chain: ['local'], via: 'local' }, {});
    const ask = (id: number, method: string, params: Record<string, unknown>) =>
      new Promise<RpcResponse>((resolve) => void dispatch(gw, session, { jsonrpc: '2.0', id, method, params }, { related: () => {}, final: resolve, gone: false }));
    const echoed = await ask(1, 'tools/call', { name: 'fx__echo', arguments: { text: 'hi' } });
    expect(echoed.result).toMatchObject({ structuredContent: { text: 'hi' } });
    const prompt = await ask(2, 'prompts/get', { name: 'fx__extra_prompt_0' });
    expect(prompt.error).toBeUndefined();
    expect(kindsPiped()).toEqual(['tools/call', 'prompts/get']);
    expect(recorded.map(([s, o]) => [s.kind, s.stepNo, o.outcome])).toEqual([
      ['tools/call', 1, 'ok'],
      ['prompts/get', 2, 'ok'],
    ]);
  });

  it('A2A messages, whose transport failures open the agent\'s circuit like any upstream\'s', async () => {
    const { recorded, sink } = recorder();
    const workflows = new MemoryWorkflows();
    const breakers = new BreakerBoard({ failureThreshold: 1, cooldownMs: 60_000 });
    const gw = { workflows, chain: new GuardChain(), sinks: [sink], breakers, a2a: memoryA2aContext() } as unknown as Gateway;
    const steps = new A2aSteps(gw);
    const allowed: Caller = { agentId: 'caller', principal: 'caller', agent: agent('caller', { a2a: { allow: ['echo-agent'] } }) as AgentManifest, chain: ['caller'], via: 'apikey' };
    const relays: string[] = [];
    const send = async (caller: Caller, agentName: string) => {
      const s = await steps.place({ caller, agent: agentName, method: 'SendMessage', text: 'hi' });
      return steps.run(s, async () => (relays.push(agentName), { ok: false, reason: 'upstream_unavailable', seen: {} }));
    };
    expect(await send(allowed, 'echo-agent')).toMatchObject({ kind: 'done', outcome: { outcome: 'error', reason: 'upstream_unavailable' } });
    expect(await send(allowed, 'echo-agent')).toMatchObject({ kind: 'refused', refusal: { reason: 'upstream_unavailable', data: { breaker: 'open' } } });
    expect(await send(allowed, 'steps-agent')).toMatchObject({ kind: 'refused', refusal: { reason: 'policy_denied' } });
    expect(relays).toEqual(['echo-agent']);
    expect(kindsPiped()).toEqual(['a2a/message', 'a2a/message', 'a2a/message']);
    expect(recorded.map(([s, o]) => [s.exposedName, o.outcome, o.reason])).toEqual([
      ['echo-agent/SendMessage', 'error', 'upstream_unavailable'],
      ['echo-agent/SendMessage', 'refused', 'upstream_unavailable'],
      ['steps-agent/SendMessage', 'refused', 'policy_denied'],
    ]);
  });

  it('token exchanges: a minted token names its own step, a refused exchange is a recorded refusal', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-kinds-'));
    const db = openDatabase({ dataDir });
    cleanups.push(() => {
      closeDatabase(db);
      rmSync(dataDir, { recursive: true, force: true });
    });
    const key = 'parent-key';
    const registry = new AgentRegistry(
      agentMap(agent('parent', { credentials: { apiKeys: [`sha256:${sha256Hex(key)}`] }, delegation: { agents: ['worker'], maxDepth: 1, maxChildren: 5 } }), agent('worker')),
    );
    const authenticator = new Authenticator({ verifier: new JwtVerifier([]), registry });
    const runtime = await openDelegation({ config: { dataDir, delegation: { maxTokenSeconds: 600 } }, db, agents: registry, localMode: () => false });
    const { recorded, sink } = recorder();
    const deps = {
      authenticate: authenticator.authenticate.bind(authenticator),
      agents: registry,
      sign: (c: Record<string, unknown>) => runtime.keys.sign(c),
      store: runtime.store,
      limits: runtime.limits,
      workflows: new MemoryWorkflows(),
      issuer: () => 'http://127.0.0.1:9',
      maxTokenSeconds: () => 600,
      sinks: () => [sink],
    };
    const ask = (audience: string) => exchange({ subjectToken: key, subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token', audience, remoteAddress: '127.0.0.1' }, deps);
    const minted = await ask('worker');
    if (isExchangeFailure(minted)) throw new Error(minted.error_description);
    const claims = JSON.parse(Buffer.from(minted.access_token.split('.')[1]!, 'base64url').toString()) as { pstep: number };
    const refused = await ask('outsider');
    expect(refused).toMatchObject({ error: 'invalid_target', status: 400 });
    expect(kindsPiped()).toEqual(['delegation', 'delegation']);
    // An API-key parent outside any session starts a workflow per exchange: each step is the first of its own.
    expect(recorded.map(([s, o]) => [s.kind, s.stepNo, o.outcome, o.reason])).toEqual([
      ['delegation', 1, 'ok', undefined],
      ['delegation', 1, 'refused', 'delegation_denied'],
    ]);
    expect(claims.pstep).toBe(1);
  });

  it('model calls: reserved at admission, relayed while the stream runs, reconciled with the usage once it ends', async () => {
    const { recorded, sink } = recorder();
    const workflows = new MemoryWorkflows();
    const counters = new LimitCounters();
    const spender = agent('spender', { limits: { workflow: { tokens: 100 } } }) as AgentManifest;
    const chain = new GuardChain([createLimitsGuard({ counters, teamsConfig: {} })]);
    const steps = new ModelSteps({ workflows, lookup: { agentOf: () => undefined, byTraceId: () => undefined }, chain, sinks: [sink], mayJoinWorkflow: () => false, idleMs: () => 60_000 });
    const caller: Caller = { agentId: 'spender', principal: 'spender', agent: spender, chain: ['spender'], via: 'apikey' };
    const placed = await steps.place(caller, undefined, undefined);
    if (!placed.ok) throw new Error(placed.refusal.message);
    const workflowId = placed.workflowId;
    const info: ModelStepInfo = { model: 'gpt-test', provider: 'openai', upstreamModel: 'gpt-test', reserve: { tokens: 60, costUsd: 0, inputTokens: 10 }, fingerprint: 'f' };
    const used: ModelOutcome = { model: 'gpt-test', upstreamModel: 'gpt-test', provider: 'openai', tokens: { input: 10, output: 5, cachedInput: 0 }, costUsd: 0 };
    let endStream!: () => void;
    const streamEnded = new Promise<void>((resolve) => (endStream = resolve));
    const relayed: string[] = [];
    const streaming = steps.run({ caller, workflowId, info, traceparent: undefined }, async (step) => {
      relayed.push(`chunk of step ${step.stepNo}`);
      await streamEnded;
      return { value: 'streamed', outcome: 'ok', tokens: 15, model: used };
    });
    await vi.waitFor(() => expect(relayed).toEqual(['chunk of step 1']));
    // Mid-stream: the whole reservation is held and nothing is recorded yet.
    expect(settled(counters.workflowUsage(workflowId))?.tokens).toBe(60);
    expect(recorded).toEqual([]);
    const overBudget = await steps.run({ caller, workflowId, info, traceparent: undefined }, async () => {
      throw new Error('a refused call is never routed');
    });
    expect(overBudget).toMatchObject({ kind: 'refused', refusal: { reason: 'budget_exceeded', data: { limit: 'workflow.tokens' } } });
    endStream();
    expect(await streaming).toMatchObject({ kind: 'done', value: 'streamed', outcome: { outcome: 'ok', tokens: 15, model: used } });
    expect(settled(counters.workflowUsage(workflowId))?.tokens).toBe(15);
    const failed = await steps.run({ caller, workflowId, info, traceparent: undefined }, async () => ({ value: 'no provider', outcome: 'error', reason: 'upstream_unavailable' }));
    expect(failed).toMatchObject({ kind: 'done', outcome: { outcome: 'error', reason: 'upstream_unavailable' } });
    expect(settled(counters.workflowUsage(workflowId))?.tokens).toBe(15);
    expect(kindsPiped()).toEqual(['model/call', 'model/call', 'model/call']);
    expect(recorded.map(([s, o]) => [s.kind, s.stepNo, o.outcome, o.reason, o.model?.tokens.output])).toEqual([
      ['model/call', 2, 'refused', 'budget_exceeded', undefined],
      ['model/call', 1, 'ok', undefined, 5],
      ['model/call', 3, 'error', 'upstream_unavailable', undefined],
    ]);
  });
});

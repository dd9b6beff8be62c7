import { describe, expect, it, vi } from 'vitest';
import { createLimitsGuard } from '../../src/gateway/guards/limits.js';
import { createLoopGuard } from '../../src/gateway/guards/loop.js';
import { createWorkflowStateGuard } from '../../src/gateway/guards/workflow-state.js';
import type { GatewayConfig } from '../../src/config/types.js';
import type { Refusal } from '../../src/gateway/types.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { LoopDetector } from '../../src/limits/loop.js';
import { MemoryLoopHistory } from '../../src/stores/memory/loop-history.js';
import { FakeClock, FakeWorkflows, agent, chained, step } from './helpers.js';
import { settled } from '../helpers/sync.js';

const ctx = {};

describe('workflow-state guard', () => {
  it('passes active workflows and refuses paused, tripped and killed ones with what to do', () => {
    const workflows = new FakeWorkflows();
    const guard = createWorkflowStateGuard({ workflows });
    const wf = workflows.begin({ id: 'wf-1' });
    const s = step(agent('a'), { workflowId: wf });
    expect(guard(s, ctx)).toBeUndefined();

    workflows.setState(wf, 'paused');
    const paused = guard(s, ctx) as Refusal;
    expect(paused.reason).toBe('workflow_paused');
    expect(paused.data).toMatchObject({ workflowId: 'wf-1', state: 'paused' });
    expect(paused.message).toMatch(/paused.*POST \/admin\/api\/workflows\/wf-1\/resume/);

    workflows.setState(wf, 'tripped', 'loop');
    expect((guard(s, ctx) as Refusal).message).toMatch(/safety limit.*resume/);
    workflows.setState(wf, 'killed');
    expect((guard(s, ctx) as Refusal).message).toMatch(/killed.*new session/);
    workflows.setState(wf, 'done');
    expect(guard(s, ctx)).toBeUndefined();
    // Unknown workflows are not the guard's business.
    expect(guard(step(agent('a'), { workflowId: 'nope' }), ctx)).toBeUndefined();
  });

  it('pausing a workflow covers its descendants', () => {
    const workflows = new FakeWorkflows();
    const parents: Record<string, string[]> = { child: ['parent', 'root'], parent: ['root'] };
    const guard = createWorkflowStateGuard({ workflows, ancestorsOf: (id) => parents[id] ?? [] });
    for (const id of ['root', 'parent', 'child']) workflows.begin({ id });
    workflows.setState('root', 'paused');
    const refusal = guard(step(agent('a'), { workflowId: 'child' }), ctx) as Refusal;
    expect(refusal.reason).toBe('workflow_paused');
    expect(refusal.data).toMatchObject({ workflowId: 'child', stoppedWorkflowId: 'root', state: 'paused' });
    expect(refusal.message).toMatch(/workflows\/root\/resume/);
    workflows.setState('root', 'active');
    expect(guard(step(agent('a'), { workflowId: 'child' }), ctx)).toBeUndefined();
  });

  it('a delegated caller is stopped by its own token workflow, wherever its step was placed', () => {
    const workflows = new FakeWorkflows();
    const guard = createWorkflowStateGuard({ workflows });
    for (const id of ['minted-in', 'elsewhere']) workflows.begin({ id });
    const s = step(agent('child'), { workflowId: 'elsewhere' });
    s.caller = { ...s.caller, via: 'delegated', workflowId: 'minted-in' };
    expect(guard(s, ctx)).toBeUndefined();
    workflows.setState('minted-in', 'killed');
    const refusal = guard(s, ctx) as Refusal;
    expect(refusal.reason).toBe('workflow_paused');
    expect(refusal.data).toMatchObject({ workflowId: 'elsewhere', stoppedWorkflowId: 'minted-in', state: 'killed' });
  });
});

describe('limits guard', () => {
  it('uses the caller’s agent limits and counts tool calls', () => {
    const counters = new LimitCounters({ now: new FakeClock().now });
    const guard = chained(createLimitsGuard({ counters, teamsConfig: {} }));
    const a = agent('a', { workflow: { toolCalls: 2, steps: 3 } });
    expect(guard(step(a), ctx)).toBeUndefined();
    expect(guard(step(a), ctx)).toBeUndefined();
    expect((guard(step(a), ctx) as Refusal).data).toMatchObject({ limit: 'workflow.toolCalls', used: 2, max: 2 });
    // Other kinds still count steps.
    expect(guard(step(a, { kind: 'resources/read' }), ctx)).toBeUndefined();
    expect((guard(step(a, { kind: 'prompts/get' }), ctx) as Refusal).data).toMatchObject({ limit: 'workflow.steps' });
  });

  it('counts a sub-agent against the workflow budget of the agent that started the workflow', () => {
    const counters = new LimitCounters({ now: new FakeClock().now });
    const root = agent('root', { workflow: { toolCalls: 2 } });
    const child = agent('child', { workflow: { toolCalls: 100 }, perMinute: { toolCalls: 100 } });
    const guard = chained(createLimitsGuard({ counters, teamsConfig: {}, agentById: (id) => (id === 'root' ? root : id === 'child' ? child : undefined) }));
    const childStep = () => {
      const s = step(child);
      s.caller = { ...s.caller, chain: ['root', 'child'], via: 'delegated' };
      return s;
    };
    expect(guard(step(root), ctx)).toBeUndefined();
    expect(guard(childStep(), ctx)).toBeUndefined();
    const refusal = guard(childStep(), ctx) as Refusal;
    expect(refusal.reason).toBe('budget_exceeded');
    expect(refusal.data).toMatchObject({ limit: 'workflow.toolCalls', used: 2, max: 2 });
  });

  it('applies team limits from the (reloadable) teams config', () => {
    const counters = new LimitCounters({ now: new FakeClock().now });
    let teams: GatewayConfig['teams'] = { data: { perMinute: { calls: 2 } } };
    const guard = chained(createLimitsGuard({ counters, teamsConfig: () => teams }));
    const a1 = agent('a1', {}, 'data');
    const a2 = agent('a2', {}, 'data');
    expect(guard(step(a1), ctx)).toBeUndefined();
    expect(guard(step(a2), ctx)).toBeUndefined();
    const refusal = guard(step(a1), ctx) as Refusal;
    expect(refusal.reason).toBe('rate_limited');
    expect(refusal.data).toMatchObject({ limit: 'team.perMinute.calls', used: 2, max: 2 });
    teams = { data: { perMinute: { calls: 10 } } };
    expect(guard(step(a1), ctx)).toBeUndefined();
  });

  it('reads limits and team from the live manifest at each step, not the one the session started with', () => {
    const counters = new LimitCounters({ now: new FakeClock().now });
    const teams: GatewayConfig['teams'] = { data: { perMinute: { toolCalls: 3 } } };
    let live = agent('a', { perMinute: { toolCalls: 100 } });
    const guard = chained(createLimitsGuard({ counters, teamsConfig: () => teams, agentById: (id) => (id === 'a' ? live : undefined) }));
    const opened = step(live).caller;
    const again = () => ({ ...step(live), caller: opened });
    expect(guard(again(), ctx)).toBeUndefined();
    live = agent('a', { perMinute: { toolCalls: 1 } });
    expect((guard(again(), ctx) as Refusal).data).toMatchObject({ limit: 'perMinute.toolCalls', used: 1, max: 1 });
    live = agent('a', {}, 'data');
    expect(guard(again(), ctx)).toBeUndefined();
    expect(guard(again(), ctx)).toBeUndefined();
    expect(guard(again(), ctx)).toBeUndefined();
    expect((guard(again(), ctx) as Refusal).data).toMatchObject({ limit: 'team.perMinute.toolCalls', max: 3 });
  });

  it('lets exactly 10 of 20 parallel calls through a budget of 10', async () => {
    const counters = new LimitCounters();
    const guard = chained(createLimitsGuard({ counters, teamsConfig: {} }));
    const a = agent('a', { perMinute: { toolCalls: 10 } });
    const results = await Promise.all(Array.from({ length: 20 }, () => Promise.resolve().then(() => guard(step(a), ctx))));
    expect(results.filter((r) => r === undefined)).toHaveLength(10);
    expect(results.filter((r) => (r as Refusal | undefined)?.reason === 'rate_limited')).toHaveLength(10);
  });

  it('an agent with no limits is only counted', () => {
    const counters = new LimitCounters();
    const guard = chained(createLimitsGuard({ counters, teamsConfig: {} }));
    for (let i = 0; i < 50; i++) expect(guard(step(undefined, { agentId: 'local' }), ctx)).toBeUndefined();
    expect(settled(counters.workflowUsage('wf-1'))?.toolCalls).toBe(50);
  });
});

describe('loop guard', () => {
  it('trips the workflow with why, refuses with loop_detected, and starts clean after a resume', () => {
    const workflows = new FakeWorkflows();
    const wf = workflows.begin({ id: 'wf-loop' });
    const guard = chained(createLoopGuard({ detector: new LoopDetector({ now: new FakeClock().now }), workflows }));
    const a = agent('a', { loop: { sameCall: 2, windowSeconds: 30 } });
    const call = () => guard(step(a, { workflowId: wf, tool: 'fs__read', args: { path: '/x' } }), ctx);
    expect(call()).toBeUndefined();
    expect(call()).toBeUndefined();
    const refusal = call() as Refusal;
    expect(refusal.reason).toBe('loop_detected');
    expect(refusal.data).toMatchObject({ workflowId: wf, call: { tool: 'fs__read', args: { path: '/x' } }, count: 3, windowSeconds: 30 });
    expect(refusal.message).toMatch(/POST \/admin\/api\/workflows\/wf-loop\/resume/);
    expect(workflows.state(wf)).toBe('tripped');
    expect(workflows.whys.get(wf)).toMatch(/fs__read called 3 times with the same arguments within 30 s/);

    workflows.setState(wf, 'active');
    expect(call()).toBeUndefined();
  });

  it('reports a cycle with its pattern', () => {
    const workflows = new FakeWorkflows();
    const guard = chained(createLoopGuard({ detector: new LoopDetector({ now: new FakeClock().now }), workflows }));
    const a = agent('a', { loop: { sameCall: 10, windowSeconds: 60, cycle: 1 } });
    const seq = ['x__a', 'x__b', 'x__a'];
    for (const tool of seq) expect(guard(step(a, { workflowId: 'w', tool }), ctx)).toBeUndefined();
    const refusal = guard(step(a, { workflowId: 'w', tool: 'x__b' }), ctx) as Refusal;
    expect(refusal.reason).toBe('loop_detected');
    expect(refusal.data?.pattern).toEqual([
      { tool: 'x__a', args: {} },
      { tool: 'x__b', args: {} },
    ]);
    expect(workflows.whys.get('w')).toMatch(/cycle x__a → x__b repeated 2 times/);
  });

  it('checks agents without limits.loop only when defaults are given, model calls by their fingerprint', () => {
    const workflows = new FakeWorkflows();
    const detector = new LoopDetector({ now: new FakeClock().now });
    const off = chained(createLoopGuard({ detector, workflows }));
    for (let i = 0; i < 20; i++) expect(off(step(agent('a'), { workflowId: 'off' }), ctx)).toBeUndefined();
    const on = chained(createLoopGuard({ detector, workflows, defaults: { sameCall: 1 } }));
    expect(on(step(agent('a'), { workflowId: 'on' }), ctx)).toBeUndefined();
    expect((on(step(agent('a'), { workflowId: 'on' }), ctx) as Refusal).reason).toBe('loop_detected');
    // Identical model requests (same fingerprint) loop like identical tool calls; a different request does not.
    const model = (workflowId: string, fingerprint: string) =>
      ({ ...step(agent('a'), { workflowId, kind: 'model/call', tool: 'gpt' }), model: { model: 'gpt', provider: 'openai', upstreamModel: 'gpt', reserve: { tokens: 1, costUsd: 0, inputTokens: 1 }, fingerprint } });
    expect(on(model('n', 'g1'), ctx)).toBeUndefined();
    expect(on(model('n', 'g2'), ctx)).toBeUndefined();
    expect(on(model('m', 'f1'), ctx)).toBeUndefined();
    expect((on(model('m', 'f1'), ctx) as Refusal).reason).toBe('loop_detected');
  });
});

describe('loop guard and finished workflows', () => {
  it('forgets the history of a done workflow it recorded calls for, and asks the store nothing for one it did not', () => {
    const workflows = new FakeWorkflows();
    const store = new MemoryLoopHistory();
    const forget = vi.spyOn(store, 'delete');
    const detector = new LoopDetector({ now: new FakeClock().now, store });
    const guard = chained(createLoopGuard({ detector, workflows }));
    const watched = agent('a', { loop: { sameCall: 2, windowSeconds: 60 } });
    const looped = workflows.begin({ id: 'wf-looped' });
    const plain = workflows.begin({ id: 'wf-plain' });
    expect(guard(step(watched, { workflowId: looped }), ctx)).toBeUndefined();
    expect(guard(step(agent('b'), { workflowId: plain }), ctx)).toBeUndefined(); // no loop settings: nothing recorded
    workflows.setState(plain, 'done');
    expect(forget).not.toHaveBeenCalled();
    workflows.setState(looped, 'done');
    expect(forget).toHaveBeenCalledWith(looped);
    expect(store.get(looped)).toBeUndefined();
    // A kill or a rejoin still starts clean whoever recorded the calls: another replica may have.
    workflows.setState(plain, 'killed');
    expect(forget).toHaveBeenLastCalledWith(plain);
  });
});

describe('loop guard with live manifests', () => {
  it('applies limits.loop from the manifest in force now', () => {
    const workflows = new FakeWorkflows();
    workflows.begin({ id: 'wf-1' });
    let live = agent('a');
    const guard = chained(createLoopGuard({ detector: new LoopDetector({ now: new FakeClock().now }), workflows, agentById: () => live }));
    const opened = step(live).caller;
    const call = () => ({ ...step(live, { args: { path: '/x' } }), caller: opened });
    expect(guard(call(), ctx)).toBeUndefined();
    expect(guard(call(), ctx)).toBeUndefined();
    live = agent('a', { loop: { sameCall: 2, windowSeconds: 60 } });
    expect(guard(call(), ctx)).toBeUndefined();
    expect(guard(call(), ctx)).toBeUndefined();
    expect((guard(call(), ctx) as Refusal).reason).toBe('loop_detected');
  });
});

describe('loop guard with a registry that rejects the transition', () => {
  it('still refuses the looping call', () => {
    const workflows = new FakeWorkflows();
    workflows.setState = () => {
      throw new Error('illegal_transition');
    };
    const guard = chained(createLoopGuard({ detector: new LoopDetector({ now: new FakeClock().now }), workflows }));
    const a = agent('a', { loop: { sameCall: 1, windowSeconds: 60 } });
    expect(guard(step(a, { workflowId: 'done-wf' }), ctx)).toBeUndefined();
    expect((guard(step(a, { workflowId: 'done-wf' }), ctx) as Refusal).reason).toBe('loop_detected');
  });
});

// The gateway's chain leaves the limits and loop checks to their commits (one counters operation and one loop history
// read per step) when nothing after them can refuse or wait; otherwise an over-budget call is refused before a human
// is asked. Either way the refusal is the same and a refused step spends nothing.
import { describe, expect, it, vi } from 'vitest';
import { createGatewayGuards } from '../../src/gateway/guards/index.js';
import type { GuardContext, HumanAnswer, Refusal } from '../../src/gateway/types.js';
import { PolicyResolver } from '../../src/identity/policy.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { MemoryLoopHistory } from '../../src/stores/memory/loop-history.js';
import type { AgentManifest } from '../../src/config/types.js';
import { FakeClock, FakeWorkflows, agent, step } from './helpers.js';

function setup(manifest: AgentManifest) {
  const counters = new LimitCounters({ now: new FakeClock().now });
  const check = vi.spyOn(counters, 'check');
  const consume = vi.spyOn(counters, 'tryConsume');
  const workflows = new FakeWorkflows();
  workflows.begin({ id: 'wf-1' });
  const loopHistory = new MemoryLoopHistory();
  const historyReads = { get: vi.spyOn(loopHistory, 'get'), open: vi.spyOn(loopHistory, 'open') };
  const chain = createGatewayGuards({
    workflows,
    policies: new PolicyResolver(),
    isA2aServer: () => false,
    delegation: () => undefined,
    counters,
    teams: () => ({}),
    agentById: (id) => (id === manifest.id ? manifest : undefined),
    loopHistory,
  });
  return { counters, check, consume, chain, workflows, historyReads };
}

const noHuman: GuardContext = {};

describe('limits checked at the commit', () => {
  it('a step nothing after the limits can refuse costs one counters operation, and is refused as a check would refuse it', async () => {
    const a = agent('a', { workflow: { toolCalls: 1 } });
    const { chain, check, consume, counters } = setup(a);
    expect(await chain.run(step(a), noHuman)).toBeUndefined();
    expect(check).not.toHaveBeenCalled();
    expect(consume).toHaveBeenCalledTimes(1);
    const refused = (await chain.run(step(a), noHuman)) as Refusal;
    expect(refused.reason).toBe('budget_exceeded');
    expect(refused.data).toMatchObject({ limit: 'workflow.toolCalls', used: 1, max: 1 });
    expect(check).not.toHaveBeenCalled();
    // The refused step counted nothing.
    expect((await counters.workflowUsage('wf-1'))?.toolCalls).toBe(1);
  });

  it('an over-budget call that needs approval is refused before anyone is asked', async () => {
    const a = agent('a', { workflow: { toolCalls: 1 } });
    a.tools.rules = [{ tool: 'fs__delete', approval: 'human' }] as AgentManifest['tools']['rules'];
    const { chain, check } = setup(a);
    const askHuman = vi.fn(async (): Promise<HumanAnswer> => ({ outcome: 'approved', via: 'client' }));
    const ctx: GuardContext = { askHuman };
    expect(await chain.run(step(a, { tool: 'fs__delete' }), ctx)).toBeUndefined();
    expect(askHuman).toHaveBeenCalledTimes(1);
    expect(check).toHaveBeenCalledTimes(1);
    const refused = (await chain.run(step(a, { tool: 'fs__delete' }), ctx)) as Refusal;
    expect(refused.data).toMatchObject({ limit: 'workflow.toolCalls' });
    expect(askHuman).toHaveBeenCalledTimes(1);
  });

  it('with loop settings both decide at their commits, limits first, so an over-budget repeat does not trip the workflow', async () => {
    const a = agent('a', { workflow: { toolCalls: 2 }, loop: { sameCall: 2, windowSeconds: 60 } });
    const { chain, check, consume, workflows } = setup(a);
    expect(await chain.run(step(a), noHuman)).toBeUndefined();
    expect(await chain.run(step(a, { args: { other: 1 } }), noHuman)).toBeUndefined();
    expect(check).not.toHaveBeenCalled();
    expect(consume).toHaveBeenCalledTimes(2);
    const refused = (await chain.run(step(a), noHuman)) as Refusal;
    expect(refused.reason).toBe('budget_exceeded');
    expect(workflows.state('wf-1')).toBe('active');
  });

  it('a step the loop guard trips at its commit gives back the budget the limits commit took, and reads the history once', async () => {
    const a = agent('a', { workflow: { toolCalls: 10 }, loop: { sameCall: 2, windowSeconds: 60 } });
    const { chain, counters, workflows, historyReads } = setup(a);
    expect(await chain.run(step(a), noHuman)).toBeUndefined();
    expect(await chain.run(step(a), noHuman)).toBeUndefined();
    // One read of the loop history per step: the check that would have read it first is the commit's.
    expect(historyReads.get.mock.calls.length + historyReads.open.mock.calls.length).toBe(2);
    const refused = (await chain.run(step(a), noHuman)) as Refusal;
    expect(refused.reason).toBe('loop_detected');
    expect(workflows.state('wf-1')).toBe('tripped');
    expect((await counters.workflowUsage('wf-1'))?.toolCalls).toBe(2);
  });

  it('a call that needs approval is checked for loops before anyone is asked', async () => {
    const a = agent('a', { loop: { sameCall: 1, windowSeconds: 60 } });
    a.tools.rules = [{ tool: 'fs__delete', approval: 'human' }] as AgentManifest['tools']['rules'];
    const { chain, workflows } = setup(a);
    const askHuman = vi.fn(async (): Promise<HumanAnswer> => ({ outcome: 'approved', via: 'client' }));
    const ctx: GuardContext = { askHuman };
    expect(await chain.run(step(a, { tool: 'fs__delete' }), ctx)).toBeUndefined();
    const refused = (await chain.run(step(a, { tool: 'fs__delete' }), ctx)) as Refusal;
    expect(refused.reason).toBe('loop_detected');
    expect(askHuman).toHaveBeenCalledTimes(1);
    expect(workflows.state('wf-1')).toBe('tripped');
  });

  it('a name not yet confirmed upstream is checked first', async () => {
    const a = agent('a', { workflow: { toolCalls: 5 } });
    const { chain, check } = setup(a);
    const s = step(a);
    s.unverified = true;
    expect(await chain.run(s, noHuman)).toBeUndefined();
    expect(check).toHaveBeenCalledTimes(1);
  });
});

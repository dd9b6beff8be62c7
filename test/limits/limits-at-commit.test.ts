// The gateway's chain leaves the limits check to the commit (one counters operation per step) only when nothing
// checked after the limits can refuse or wait; otherwise an over-budget call is refused before the loop guard or a
// human is asked. Either way the refusal is the same and a refused step spends nothing.
import { describe, expect, it, vi } from 'vitest';
import { createGatewayGuards } from '../../src/gateway/guards/index.js';
import type { GuardContext, HumanAnswer, Refusal } from '../../src/gateway/types.js';
import { PolicyResolver } from '../../src/identity/policy.js';
import { LimitCounters } from '../../src/limits/counters.js';
import type { AgentManifest } from '../../src/config/types.js';
import { FakeClock, FakeWorkflows, agent, step } from './helpers.js';

function setup(manifest: AgentManifest) {
  const counters = new LimitCounters({ now: new FakeClock().now });
  const check = vi.spyOn(counters, 'check');
  const consume = vi.spyOn(counters, 'tryConsume');
  const workflows = new FakeWorkflows();
  workflows.begin({ id: 'wf-1' });
  const chain = createGatewayGuards({
    workflows,
    policies: new PolicyResolver(),
    isA2aServer: () => false,
    delegation: () => undefined,
    counters,
    teams: () => ({}),
    agentById: (id) => (id === manifest.id ? manifest : undefined),
  });
  return { counters, check, consume, chain, workflows };
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

  it('with loop settings the limits check first, so an over-budget repeat does not trip the workflow', async () => {
    const a = agent('a', { workflow: { toolCalls: 2 }, loop: { sameCall: 2, windowSeconds: 60 } });
    const { chain, check, workflows } = setup(a);
    expect(await chain.run(step(a), noHuman)).toBeUndefined();
    expect(await chain.run(step(a, { args: { other: 1 } }), noHuman)).toBeUndefined();
    expect(check).toHaveBeenCalledTimes(2);
    const refused = (await chain.run(step(a), noHuman)) as Refusal;
    expect(refused.reason).toBe('budget_exceeded');
    expect(workflows.state('wf-1')).toBe('active');
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

// What the gateway opens on its data dir survives a restart of the process: a delegated token's budget slice (it used
// to reset), the agent's rolling window and the workflow's budget, and the workflow's state and step numbers.
import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openAudit, openDatabase } from '../../src/audit/index.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { GuardChain } from '../../src/gateway/chain.js';
import { createLimitsGuard } from '../../src/gateway/guards/limits.js';
import type { Caller } from '../../src/gateway/types.js';
import { openDelegation } from '../../src/identity/delegation-runtime.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { agent, FakeClock, step } from '../limits/helpers.js';
import { removeStoreDirs, storeDir } from './factories.js';

afterEach(removeStoreDirs);

describe('after a restart', () => {
  it("a delegated token's budget slice keeps what it spent", async () => {
    const dataDir = storeDir();
    const open = async () => {
      const db = openDatabase({ dataDir });
      const runtime = await openDelegation({ config: { dataDir, delegation: { maxTokenSeconds: 600 } }, db, agents: new AgentRegistry(), localMode: () => false });
      return { db, runtime, chain: new GuardChain([runtime.guard]) };
    };
    const first = await open();
    await first.runtime.store.record({ jti: 'j1', parentNode: 'root@wf', workflowId: 'wf', agent: 'child', parentAgent: 'root', depth: 1, budgetToolCalls: 2, issuedAt: Date.now(), expiresAt: Date.now() + 600_000 });
    const call = () => {
      const s = step(agent('child'), { workflowId: 'wf' });
      s.caller = { ...s.caller, agentId: 'child', chain: ['root', 'child'], via: 'delegated', jti: 'j1' } as Caller;
      return s;
    };
    expect(await first.chain.run(call(), {})).toBeUndefined();
    closeDatabase(first.db);

    const second = await open();
    expect(await second.runtime.slices.used('j1')).toBe(1);
    expect(await second.chain.run(call(), {})).toBeUndefined();
    expect((await second.chain.run(call(), {}))?.data).toMatchObject({ limit: 'delegation.budget.toolCalls', used: 2, max: 2 });
    closeDatabase(second.db);
  });

  it('counters: the rolling window and the workflow budget go on where they were', async () => {
    const dataDir = storeDir();
    const clock = new FakeClock();
    const a = agent('a', { perHour: { toolCalls: 3 }, workflow: { toolCalls: 2 } });
    const open = () => {
      const counters = new LimitCounters({ now: clock.now, dataDir });
      return { counters, chain: new GuardChain([createLimitsGuard({ counters, teamsConfig: {} })]) };
    };
    const first = open();
    expect(await first.chain.run(step(a, { workflowId: 'wf-1' }), {})).toBeUndefined();
    expect(await first.chain.run(step(a, { workflowId: 'wf-1' }), {})).toBeUndefined();
    await first.counters.close();

    clock.advance(60_000);
    const second = open();
    expect((await second.chain.run(step(a, { workflowId: 'wf-1' }), {}))?.data).toMatchObject({ limit: 'workflow.toolCalls', used: 2 });
    expect(await second.chain.run(step(a, { workflowId: 'wf-2' }), {})).toBeUndefined();
    expect((await second.chain.run(step(a, { workflowId: 'wf-3' }), {}))?.data).toMatchObject({ limit: 'perHour.toolCalls', used: 3 });
    await second.counters.close();
  });

  it("workflows: a paused workflow stays paused and its step numbers go on", () => {
    const dataDir = storeDir();
    const audit: GatewayConfig['audit'] = { enabled: true, durability: 'batched', flushMs: 60_000, redact: [], retentionDays: 0 } as unknown as GatewayConfig['audit'];
    const caller: Caller = { agentId: 'a', principal: 'a', chain: ['a'], via: 'apikey' };
    const first = openAudit({ dataDir, audit });
    const id = first.workflows.begin({ caller, kind: 'mcp' });
    expect([first.workflows.nextStep(id), first.workflows.nextStep(id), first.workflows.nextStep(id)]).toEqual([1, 2, 3]);
    first.workflows.setState(id, 'paused', 'by admin');
    first.close();

    const second = openAudit({ dataDir, audit });
    expect(second.workflows.state(id)).toBe('paused');
    expect(second.workflows.nextStep(id)).toBe(4);
    second.close();
  });
});

// Two workflow stores on one PostgreSQL database, as two replicas: a pause or kill on one is seen by the other within
// a second (over the bus, or by the catch-up read when the message is lost), a replica that starts later knows the
// stopped workflows, and step numbers stay unique and increasing across both.
import { describe, expect, it, vi } from 'vitest';
import { GuardChain } from '../../../src/gateway/chain.js';
import { ModelSteps } from '../../../src/gateway/model-steps.js';
import type { Caller, WorkflowState } from '../../../src/gateway/types.js';
import type { ControlBus } from '../../../src/stores/bus.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import type { Postgres } from '../../../src/stores/postgres/pool.js';
import { storeDir } from '../factories.js';
import { pgFor, pgUnavailable } from './databases.js';
import { closedAfterEach, DeafBus } from './replicas.js';

if (pgUnavailable) console.log(`skipping workflow replica tests: ${pgUnavailable}`);

const root: Caller = { agentId: 'root', principal: 'root', chain: ['root'], via: 'apikey' };

const keep = closedAfterEach();
async function replica(db: Postgres, bus: ControlBus, catchUpMs = 500): Promise<PgWorkflows> {
  return keep(await PgWorkflows.open({ db, bus, catchUpMs }));
}

describe.skipIf(pgUnavailable)('workflows across replicas on PostgreSQL', () => {
  it('a pause and a kill on one replica reach the other over the bus, listeners included', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const a = await replica(await pgFor(dir), bus);
    const b = await replica(await pgFor(dir), bus);
    expect([a.health(), b.health()]).toEqual([{ ok: true }, { ok: true }]);
    const heard: Array<[string, WorkflowState]> = [];
    b.onStateChange((id, s) => heard.push([id, s]));
    const id = a.begin({ caller: root, kind: 'mcp' });
    await a.nextStep(id);
    const t0 = performance.now();
    await a.setState(id, 'paused', 'by admin');
    expect(b.state(id)).toBe('paused');
    await a.setState(id, 'killed', 'by admin');
    expect(b.state(id)).toBe('killed');
    console.log(`pause+kill seen on the other replica over the bus after ${(performance.now() - t0).toFixed(1)} ms`);
    expect(heard).toEqual([
      [id, 'paused'],
      [id, 'killed'],
    ]);
  });

  it('with every bus message lost, the catch-up read shows a kill on the other replica within 1 s', async () => {
    const dir = storeDir();
    const a = await replica(await pgFor(dir), new DeafBus());
    const b = await replica(await pgFor(dir), new DeafBus());
    const id = a.begin({ caller: root, kind: 'mcp' });
    await a.settled();
    b.begin({ caller: root, kind: 'mcp', id });
    await b.settled();
    expect(b.state(id)).toBe('active');
    const t0 = performance.now();
    await a.setState(id, 'killed', 'by admin');
    await vi.waitFor(() => expect(b.state(id)).toBe('killed'), { timeout: 1000, interval: 10 });
    const ms = performance.now() - t0;
    console.log(`kill seen on the other replica by catch-up after ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(1000);
  });

  it('a replica that starts later knows the paused, tripped and killed workflows at once', async () => {
    const dir = storeDir();
    const a = await replica(await pgFor(dir), new DeafBus());
    const ids = ['wf-p', 'wf-t', 'wf-k', 'wf-d', 'wf-a'].map((id) => a.begin({ caller: root, kind: 'mcp', id }));
    await a.settled();
    await a.setState('wf-p', 'paused');
    await a.setState('wf-t', 'tripped');
    await a.setState('wf-k', 'killed');
    await a.setState('wf-d', 'done');
    const late = await replica(await pgFor(dir), new DeafBus(), 60_000);
    expect(ids.map((id) => late.state(id))).toEqual(['paused', 'tripped', 'killed', undefined, undefined]);
    // Joining one it did not know asks the store: the killed state stands, the done one is active again.
    late.begin({ caller: root, kind: 'mcp', id: 'wf-d' });
    await late.settled();
    expect(late.state('wf-d')).toBe('active');
    expect(a.state('wf-d')).toBe('done'); // a deaf bus: a learns on its next catch-up read
    await a.catchUp();
    expect(a.state('wf-d')).toBe('active');
  });

  it('joining a workflow another replica killed keeps it killed here too', async () => {
    const dir = storeDir();
    const a = await replica(await pgFor(dir), new DeafBus(), 60_000);
    const id = a.begin({ caller: root, kind: 'mcp' });
    await a.settled();
    await a.setState(id, 'killed');
    const b = await replica(await pgFor(dir), new DeafBus(), 60_000);
    const c = await replica(await pgFor(dir), new DeafBus(), 60_000);
    expect(b.state(id)).toBe('killed');
    // c opened after the kill as well; it joins by id and the store's state wins over its optimistic 'active'.
    c.begin({ caller: root, kind: 'mcp', id });
    await c.settled();
    expect(c.state(id)).toBe('killed');
    await expect(c.setState(id, 'active')).rejects.toThrow(/is killed and cannot become active/);
  });

  it('step numbers are unique and increase in allocation order across two replicas', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const a = await replica(await pgFor(dir), bus);
    const b = await replica(await pgFor(dir), bus);
    const id = a.begin({ caller: root, kind: 'mcp', id: 'wf-steps' });
    b.begin({ caller: root, kind: 'mcp', id });
    const t0 = performance.now();
    const got = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? a : b).nextStep(id)));
    const ms = performance.now() - t0;
    console.log(`400 step numbers from two replicas in ${ms.toFixed(0)} ms (${((ms / 400) * 1000).toFixed(0)} µs each, 20 connections)`);
    expect(new Set(got).size).toBe(400);
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    // One caller's steps, awaited in turn, always increase, whichever replica numbers them.
    const seq: number[] = [];
    const t1 = performance.now();
    for (let i = 0; i < 200; i++) seq.push(await (i % 2 === 0 ? a : b).nextStep(id));
    console.log(`200 step numbers one after another: ${(((performance.now() - t1) / 200) * 1000).toFixed(0)} µs each`);
    expect(seq).toEqual(Array.from({ length: 200 }, (_, i) => 401 + i));
  });

  it('two replicas racing to kill and finish the same workflow agree on the outcome', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const a = await replica(await pgFor(dir), bus);
    const b = await replica(await pgFor(dir), bus);
    for (let round = 0; round < 10; round++) {
      const id = a.begin({ caller: root, kind: 'mcp' });
      await a.settled();
      b.begin({ caller: root, kind: 'mcp', id });
      await b.settled();
      const [killed, done] = await Promise.allSettled([a.setState(id, 'killed', 'admin'), b.setState(id, 'done', 'finished')]);
      expect(killed.status).toBe('fulfilled'); // done → killed is legal, so a kill always wins in the end
      if (done.status === 'rejected') expect(String(done.reason)).toMatch(/is killed and cannot become done/);
      expect(a.state(id)).toBe('killed');
      expect(b.state(id)).toBe('killed');
    }
  });

  it("a model call on one replica joins a workflow started on another by X-Workflow-Id or traceparent, and only the caller's own", async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const a = await replica(await pgFor(dir), bus);
    const b = await replica(await pgFor(dir), bus);
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const traceparent = `00-${trace}-b7ad6b7169203331-01`;
    const started = a.begin({ caller: root, kind: 'mcp', id: 'wf-root', traceparent });
    await a.settled();
    expect(await b.agentOf(started)).toBe('root');
    expect(await b.byTraceId(trace)).toBe(started);
    expect(await b.agentOf('nope')).toBeUndefined();
    expect(await b.byTraceId('not-a-trace')).toBeUndefined();
    const steps = new ModelSteps({ workflows: b, lookup: b, chain: new GuardChain([]), sinks: [], mayJoinWorkflow: () => false, idleMs: () => 60_000 });
    const other: Caller = { agentId: 'other', principal: 'other', chain: ['other'], via: 'apikey' };
    const self: Caller = { ...root, principal: 'root' };
    expect(await steps.place(self, started, undefined)).toEqual({ ok: true, workflowId: started });
    expect(await steps.place(self, undefined, traceparent)).toEqual({ ok: true, workflowId: started });
    expect(await steps.place(other, started, undefined)).toMatchObject({ ok: false, status: 403, refusal: { reason: 'policy_denied' } });
    const ambient = await steps.place(other, undefined, traceparent);
    expect(ambient.ok && ambient.workflowId).not.toBe(started); // a stranger's trace id starts its own workflow
  });

  it('a malformed bus message is ignored and logged, not applied', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const warnings: unknown[] = [];
    const w = keep(await PgWorkflows.open({ db: await pgFor(dir), bus, log: { warn: (o: unknown) => warnings.push(o), error: () => {} } }));
    const id = w.begin({ caller: root, kind: 'mcp' });
    await w.settled();
    bus.publish('workflow-state', { id, state: 'exploded', version: 99 });
    bus.publish('workflow-state', { id, state: 'killed' });
    expect(w.state(id)).toBe('active');
    expect(warnings).toHaveLength(2);
  });
});

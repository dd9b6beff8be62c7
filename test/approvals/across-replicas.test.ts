/** Two approval queues on one store and one control bus, as two replicas: a decision on one releases the call on the other. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { ApprovalQueue } from '../../src/gateway/approval-queue.js';
import { MemoryApprovals } from '../../src/stores/memory/approvals.js';
import { MemoryControlBus } from '../../src/stores/memory/bus.js';
import type { ControlBus } from '../../src/stores/bus.js';
import type { Step } from '../../src/gateway/types.js';
import { waitFor } from '../helpers/gateway.js';

const HOUR = 3_600_000;

function call(): Step {
  return {
    kind: 'tools/call',
    caller: { agentId: 'analyst', principal: 'p', chain: ['analyst'], via: 'apikey' },
    workflowId: 'wf-1',
    stepNo: 0,
    server: 'db',
    target: 'delete_rows',
    exposedName: 'db__delete_rows',
    args: { table: 't' },
    startedAt: Date.now(),
  };
}

function replica(store: MemoryApprovals, bus: ControlBus | undefined, opts: { pollMs?: number; lines?: string[] } = {}): ApprovalQueue {
  let n = 0;
  const log = pino({ level: 'warn' }, { write: (line: string) => void opts.lines?.push(line) });
  return new ApprovalQueue({ store, bus, log, timeoutMs: HOUR, pollMs: opts.pollMs ?? HOUR, nextStep: () => ++n, record: () => {} });
}

async function pendingId(store: MemoryApprovals): Promise<string> {
  const p = await waitFor(async () => (await store.list({ state: 'pending' }))[0], { what: 'a pending approval' });
  return p.id;
}

describe('approvals across replicas', () => {
  it('a decision made on another replica releases the waiting call through the bus, without waiting for a poll', async () => {
    const store = new MemoryApprovals();
    const bus = new MemoryControlBus();
    const a = replica(store, bus);
    const b = replica(store, bus);
    const waiting = a.wait(call());
    const id = await pendingId(store);
    const t0 = Date.now();
    expect((await b.decide(id, 'approved', { by: 'admin@b' })).ok).toBe(true);
    const final = await waiting;
    expect(final.state).toBe('approved');
    expect(final.decidedBy).toBe('admin@b');
    expect(Date.now() - t0).toBeLessThan(500);
    a.close();
    b.close();
  });

  it('without the bus message the waiter still finds the decision in the store on its next poll', async () => {
    const store = new MemoryApprovals();
    const a = replica(store, new MemoryControlBus(), { pollMs: 50 });
    const b = replica(store, new MemoryControlBus());
    const waiting = a.wait(call());
    const id = await pendingId(store);
    await b.decide(id, 'denied', { by: 'admin@b', reason: 'no' });
    expect((await waiting).state).toBe('denied');
    a.close();
    b.close();
  });

  it('a bus that fails to publish leaves the decision made and says so once in the log', async () => {
    const store = new MemoryApprovals();
    const lines: string[] = [];
    const broken: ControlBus = { replicaId: 'x', publish: () => Promise.reject(new Error('connection is closed')), subscribe: () => () => {}, close: () => {} };
    const a = replica(store, undefined, { pollMs: 50 });
    const b = replica(store, broken, { lines });
    const waiting = a.wait(call());
    const id = await pendingId(store);
    expect((await b.decide(id, 'approved', { by: 'admin' })).ok).toBe(true);
    expect((await waiting).state).toBe('approved');
    await waitFor(() => lines.length > 0, { what: 'the warning' });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).msg).toMatch(/could not announce an approval decision.*within a second/);
  });

  it('a message naming no known approval, or a malformed one, changes nothing', async () => {
    const store = new MemoryApprovals();
    const bus = new MemoryControlBus();
    const a = replica(store, bus);
    const waiting = a.wait(call());
    const id = await pendingId(store);
    bus.publish('approval', { id: 42 });
    bus.publish('approval', { id: 'nope' });
    bus.publish('approval', { id });
    await new Promise((r) => setImmediate(r));
    expect((await store.get(id))?.state).toBe('pending');
    await a.decide(id, 'approved', { by: 'admin' });
    expect((await waiting).state).toBe('approved');
    a.close();
  });
});

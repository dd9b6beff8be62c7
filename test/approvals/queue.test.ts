/** The approval queue in-process: memory store, fake clock, a stubbed webhook. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { ApprovalQueue } from '../../src/gateway/approval-queue.js';
import { MemoryApprovals } from '../../src/stores/memory/approvals.js';
import type { Step, StepOutcome } from '../../src/gateway/types.js';

function call(args: Record<string, unknown> = { table: 'tmp_1' }): Step {
  return {
    kind: 'tools/call',
    caller: { agentId: 'analyst', principal: 'p', user: 'ann@example.com', chain: ['analyst'], via: 'apikey' },
    workflowId: 'wf-1',
    stepNo: 0,
    server: 'db',
    target: 'delete_rows',
    exposedName: 'db__delete_rows',
    args,
    startedAt: Date.now(),
  };
}

let recorded: Array<{ step: Step; outcome: StepOutcome }>;
let store: MemoryApprovals;
let webhookCalls: number;

function queue(extra: Partial<ConstructorParameters<typeof ApprovalQueue>[0]> = {}): ApprovalQueue {
  let n = 10;
  return new ApprovalQueue({
    store,
    log: pino({ level: 'silent' }),
    timeoutMs: 60_000,
    nextStep: () => ++n,
    record: (step, outcome) => recorded.push({ step, outcome }),
    ...extra,
  });
}

beforeEach(() => {
  vi.useFakeTimers();
  recorded = [];
  store = new MemoryApprovals();
  webhookCalls = 0;
  // A webhook that never answers: the call path must not wait for it.
  vi.stubGlobal('fetch', () => (webhookCalls++, new Promise(() => {})));
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

async function pendingOne(): Promise<string> {
  await vi.advanceTimersByTimeAsync(0);
  const [p] = await store.list({ state: 'pending' });
  expect(p).toBeDefined();
  return p!.id;
}

describe('ApprovalQueue', () => {
  it('reports progress while waiting, and an admin decision releases the call and becomes a step', async () => {
    const q = queue({ webhook: 'http://127.0.0.1:9/hook', progressEveryMs: 5_000 });
    const progress: string[] = [];
    const waiting = q.wait(call(), { progress: (m) => progress.push(m) });
    const id = await pendingOne();
    expect(webhookCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(12_000);
    expect(progress).toHaveLength(3);
    expect(progress[2]).toContain('10 s');
    const d = await q.decide(id, 'approved', { by: 'admin:abc', reason: 'fine' });
    expect(d.ok).toBe(true);
    expect(await waiting).toMatchObject({ id, state: 'approved', decidedBy: 'admin:abc', reason: 'fine' });
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.step).toMatchObject({ kind: 'approval', workflowId: 'wf-1', stepNo: 11, exposedName: 'db__delete_rows', args: { decision: 'approved', decidedBy: 'admin:abc', approvalId: id } });
    expect(recorded[0]!.outcome).toMatchObject({ outcome: 'ok' });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(progress).toHaveLength(3); // no progress after the decision
  });

  it('numbers the decision from a shared workflow store that answers with a promise, and logs a numbering failure', async () => {
    const q = queue({ nextStep: async () => 42 });
    const waiting = q.wait(call());
    const id = await pendingOne();
    await q.decide(id, 'approved', { by: 'admin:abc' });
    await waiting;
    await vi.waitFor(() => expect(recorded).toHaveLength(1));
    expect(recorded[0]!.step).toMatchObject({ kind: 'approval', stepNo: 42 });

    const errors: unknown[] = [];
    const log = Object.assign(pino({ level: 'silent' }), { error: (o: unknown) => void errors.push(o) });
    const failing = queue({ nextStep: () => Promise.reject(new Error('store down')), log });
    const held = failing.wait(call());
    const id2 = (await store.list({ state: 'pending' }))[0]!.id;
    await failing.decide(id2, 'denied', { by: 'admin:abc' });
    await held;
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ err: 'store down' });
    expect(recorded).toHaveLength(1);
  });

  it('expires after timeoutMs: the approval is marked expired by the gateway and refused in the trail', async () => {
    const q = queue({ timeoutMs: 30_000 });
    const waiting = q.wait(call());
    const id = await pendingOne();
    await vi.advanceTimersByTimeAsync(29_000);
    expect((await store.get(id))!.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1_500);
    expect(await waiting).toMatchObject({ state: 'expired', decidedBy: 'gateway' });
    expect(recorded[0]!.outcome).toMatchObject({ outcome: 'refused', reason: 'approval_denied' });
    expect(await q.decide(id, 'approved', { by: 'admin:late' })).toMatchObject({ ok: false, error: 'already_decided' });
  });

  it('is cancelled when the client cancels', async () => {
    const q = queue();
    const controller = new AbortController();
    const waiting = q.wait(call(), { signal: controller.signal });
    const id = await pendingOne();
    controller.abort();
    expect(await waiting).toMatchObject({ id, state: 'cancelled', decidedBy: 'client' });
  });

  it('releases a waiter decided elsewhere (another replica writing the same store)', async () => {
    const q = queue({ pollMs: 1_000 });
    const waiting = q.wait(call());
    const id = await pendingOne();
    await store.settle(id, 'denied', { by: 'admin:other', at: Date.now(), reason: 'no' });
    await vi.advanceTimersByTimeAsync(1_100);
    expect(await waiting).toMatchObject({ state: 'denied', decidedBy: 'admin:other' });
  });

  it('binds the decision to the digest of the arguments it was made on', async () => {
    const q = queue();
    const waiting = q.wait(call({ table: 'tmp_2' }));
    const id = await pendingOne();
    const other = (await q.get(id))!.argsDigest.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    expect(await q.decide(id, 'approved', { by: 'admin:a', expectDigest: other })).toMatchObject({ ok: false, error: 'digest_mismatch' });
    expect((await store.get(id))!.state).toBe('pending');
    expect(await q.decide('missing', 'approved', { by: 'admin:a' })).toMatchObject({ ok: false, error: 'not_found' });
    await q.decide(id, 'denied', { by: 'admin:a' });
    expect((await waiting).state).toBe('denied');
  });
});

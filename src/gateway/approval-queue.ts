/**
 * The approval queue (SPEC §10): a held call waits here until an admin approves or denies it, it times out, or the
 * client cancels. Pending calls live in an ApprovalsStore; this process keeps only the waiters and their timers.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { argsDigest, type ApprovalListFilter, type ApprovalOutcome, type ApprovalRecord, type ApprovalsStore } from '../stores/approvals.js';
import type { ControlBus, ControlMessage } from '../stores/bus.js';
import type { HumanAnswer, Step, StepOutcome } from './types.js';
import type { Awaitable } from '../stores/types.js';

export interface ApprovalQueueOptions {
  store: ApprovalsStore;
  /** Where decisions are announced, so a call waiting on another replica is released at once (it polls as well). */
  bus?: ControlBus;
  log: Logger;
  /** approval.timeoutSeconds in ms. */
  timeoutMs: number;
  /** approval.webhook: POSTed each pending call; never awaited on the call path. */
  webhook?: string;
  /** How often a waiting call tells its client it is still waiting. */
  progressEveryMs?: number;
  /** How often a waiter looks in the store for a decision made elsewhere (another replica). */
  pollMs?: number;
  /** Allocates the decision step's number in the call's workflow. */
  nextStep: (workflowId: string) => Awaitable<number>;
  /** Records the decision step in the trail. */
  record: (step: Step, outcome: StepOutcome) => void;
  now?: () => number;
}

export interface WaitHooks {
  signal?: AbortSignal;
  /** Tell the client the call is still waiting (notifications/progress). */
  progress?: (message: string) => void;
}

export type DecideResult =
  | { ok: true; record: ApprovalRecord }
  | { ok: false; error: 'not_found' | 'already_decided' | 'digest_mismatch'; message: string; record?: ApprovalRecord };

const WEBHOOK_TIMEOUT_MS = 5_000;

export class ApprovalQueue {
  private readonly waiters = new Map<string, (r: ApprovalRecord) => void>();
  private readonly now: () => number;
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: ApprovalQueueOptions) {
    this.now = opts.now ?? Date.now;
    this.unsubscribe = opts.bus?.subscribe('approval', (m) => this.heard(m)) ?? (() => {});
  }

  /** Stop hearing decisions from other replicas (waiting calls still see them by polling). */
  close(): void {
    this.unsubscribe();
  }

  /** A decision announced on the bus: the store, not the message, says what it was. */
  private heard(message: ControlMessage): void {
    const id = message.data.id;
    if (typeof id !== 'string') return;
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.opts.store.get(id).then(
      (r) => {
        if (r && r.state !== 'pending') waiter(r);
      },
      (err: Error) => this.opts.log.warn({ approval: id, err: err.message }, 'could not read an approval decided on another replica; the waiting call looks again within a second'),
    );
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  list(filter?: ApprovalListFilter): Promise<ApprovalRecord[]> {
    return this.opts.store.list(filter);
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    return this.opts.store.get(id);
  }

  /** Hold the call until it is decided; resolves with the final record (approved, denied, expired or cancelled). */
  async wait(step: Step, hooks: WaitHooks = {}): Promise<ApprovalRecord> {
    const created = this.now();
    const record: ApprovalRecord = {
      id: randomUUID(),
      agent: step.caller.agentId,
      ...(step.caller.user !== undefined ? { user: step.caller.user } : {}),
      workflowId: step.workflowId,
      ...(step.server !== undefined ? { server: step.server } : {}),
      tool: step.exposedName,
      args: step.args ?? {},
      argsDigest: argsDigest(step.args),
      createdAt: created,
      expiresAt: created + this.opts.timeoutMs,
      state: 'pending',
    };
    if (hooks.signal?.aborted) return { ...record, state: 'cancelled', decidedBy: 'client', decidedAt: created };
    await this.opts.store.create(record);
    this.opts.log.info({ approval: record.id, agent: record.agent, workflowId: record.workflowId, tool: record.tool }, `call to ${record.tool} waits for approval: approve or deny it in the console or at POST /admin/api/approvals/${record.id}/approve|deny`);
    this.announce(record);
    const final = await new Promise<ApprovalRecord>((resolve) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const done = (r: ApprovalRecord): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t), clearInterval(t);
        hooks.signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(record.id);
        resolve(r);
      };
      const close = (outcome: ApprovalOutcome, by: string, reason: string): void => {
        void this.opts.store.settle(record.id, outcome, { by, at: this.now(), reason }).then(
          async (r) => done(r ?? (await this.opts.store.get(record.id)) ?? { ...record, state: outcome, decidedBy: by, reason }),
          (err: Error) => done({ ...record, state: outcome, decidedBy: by, reason: `${reason} (${err.message})` }),
        );
      };
      const onAbort = (): void => close('cancelled', 'client', 'the client cancelled the call');
      this.waiters.set(record.id, done);
      hooks.signal?.addEventListener('abort', onAbort, { once: true });
      timers.push(setTimeout(() => close('expired', 'gateway', `no decision within ${Math.round(this.opts.timeoutMs / 1000)} s`), this.opts.timeoutMs));
      let waited = 0;
      const every = this.opts.progressEveryMs ?? 5_000;
      hooks.progress?.(`waiting for approval ${record.id}`);
      timers.push(
        setInterval(() => {
          waited += every;
          hooks.progress?.(`waiting for approval ${record.id} (${Math.round(waited / 1000)} s)`);
        }, every),
      );
      timers.push(
        setInterval(() => {
          void this.opts.store.get(record.id).then((r) => {
            if (r && r.state !== 'pending') done(r);
          }, () => {});
        }, this.opts.pollMs ?? 1_000),
      );
    });
    this.recordDecision(step, { outcome: final.state === 'pending' ? 'expired' : final.state, by: final.decidedBy, reason: final.reason, via: 'queue' }, { approvalId: final.id, argsDigest: final.argsDigest }, created);
    return final;
  }

  /**
   * An admin's decision. Bound to the exact call: when `expectDigest` is given it must match the held arguments, so
   * a decision made on what one page showed never approves different arguments. The first decision wins.
   */
  async decide(id: string, outcome: 'approved' | 'denied', decision: { by: string; reason?: string; expectDigest?: string }): Promise<DecideResult> {
    const current = await this.opts.store.get(id);
    if (!current) return { ok: false, error: 'not_found', message: `no approval "${id}"; list pending ones with GET /admin/api/approvals` };
    if (current.state !== 'pending') return { ok: false, error: 'already_decided', message: `approval ${id} is ${current.state} already; an approval is used once`, record: current };
    if (decision.expectDigest !== undefined && decision.expectDigest !== current.argsDigest) {
      return { ok: false, error: 'digest_mismatch', message: `approval ${id} holds different arguments (${current.argsDigest}) than the ones you decided on (${decision.expectDigest}); reload it and decide again`, record: current };
    }
    const r = await this.opts.store.settle(id, outcome, { by: decision.by, at: this.now(), reason: decision.reason });
    if (!r) {
      const now = await this.opts.store.get(id);
      return { ok: false, error: 'already_decided', message: `approval ${id} was decided meanwhile (${now?.state ?? 'gone'}); an approval is used once`, record: now };
    }
    this.waiters.get(id)?.(r);
    this.announceDecision(r);
    return { ok: true, record: r };
  }

  /** The decision as a step of the call's workflow: who decided, when, and on which arguments. */
  recordDecision(call: Step, answer: HumanAnswer, extra: Record<string, unknown>, askedAt: number): void {
    const at = this.now();
    const step: Step = {
      kind: 'approval',
      caller: call.caller,
      workflowId: call.workflowId,
      stepNo: 0, // numbered below, once the store answers
      server: call.server,
      target: call.target,
      exposedName: call.exposedName,
      args: { decision: answer.outcome, decidedBy: answer.by ?? null, via: answer.via, ...(answer.reason !== undefined ? { reason: answer.reason } : {}), argsDigest: argsDigest(call.args), ...extra },
      startedAt: askedAt,
    };
    const approved = answer.outcome === 'approved';
    const failed = (err: unknown) => this.opts.log.error({ err: (err as Error).message, workflowId: call.workflowId }, 'could not record the approval decision in the trail');
    const write = (stepNo: number) => {
      step.stepNo = stepNo;
      this.opts.record(step, { outcome: approved ? 'ok' : 'refused', ...(approved ? {} : { reason: 'approval_denied' }), durationMs: at - askedAt });
    };
    try {
      const stepNo = this.opts.nextStep(call.workflowId);
      if (stepNo instanceof Promise) stepNo.then(write).catch(failed);
      else write(stepNo);
    } catch (err) {
      failed(err);
    }
  }

  /** Tell every replica; a lost message costs the waiter one poll, so a failure is only logged. */
  private announceDecision(r: ApprovalRecord): void {
    const bus = this.opts.bus;
    if (!bus) return;
    const warn = (err: Error) => this.opts.log.warn({ approval: r.id, err: err.message }, 'could not announce an approval decision to the other replicas; a call waiting there sees it within a second');
    try {
      void Promise.resolve(bus.publish('approval', { id: r.id, state: r.state })).catch(warn);
    } catch (err) {
      warn(err as Error);
    }
  }

  /** POST the pending call to approval.webhook; a slow or failing webhook is logged and never holds the call. */
  private announce(record: ApprovalRecord): void {
    const url = this.opts.webhook;
    if (!url) return;
    const body = JSON.stringify({ type: 'approval.pending', approval: record, approve: `/admin/api/approvals/${record.id}/approve`, deny: `/admin/api/approvals/${record.id}/deny` });
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) }).then(
      async (res) => {
        await res.body?.cancel();
        if (!res.ok) this.opts.log.warn({ approval: record.id, status: res.status }, `approval webhook answered ${res.status}; the call still waits in the queue: check approval.webhook in gateway.yaml`);
      },
      (err: Error) => this.opts.log.warn({ approval: record.id, err: err.message }, 'approval webhook failed; the call still waits in the queue: check approval.webhook in gateway.yaml'),
    );
  }
}

/**
 * The Step pipeline: every Step (tools/call, prompts/get, resources/read, a2a/message, delegation and model/call)
 * goes through `runPipeline`, which owns step numbering, the guard phases (check → commit → route → after),
 * the circuit breaker, retries and recording to the sinks. An entry point builds the Step and a plan, and renders
 * the result in its own wire format (src/downstream/render/*: one RefusalRenderer per wire).
 *
 *   const result = await runPipeline(deps, step, {
 *     ctx,                          // what checks may need (askClient, signal, capabilities)
 *     checks: [...],                // the entry point's own checks, run before the chain's (optional)
 *     guards,                       // a chain other than deps.chain (optional; the token endpoint has its own)
 *     breaker: server,              // whose circuit applies (optional; none without it)
 *     retryable: (attempt) => bool, // may a transport failure be tried again (optional; never without it)
 *     signal,                       // stops retries when the caller cancels (optional)
 *     confirm: () => bool,          // after the checks, before any commit: false ends it as an unknown name (optional)
 *     route: (attempt) => Routed,   // the call itself, once per attempt; a stream resolves only once it has ended
 *   });
 *   switch (result.kind) { case 'done': …result.value; case 'refused': render(result.refusal); case 'unknown': … }
 *
 * A refusal at any guard spends nothing; a refusal with `asUnknown`, a `confirm` that says no and a route that
 * answers `{ unknown: true }` are not steps at all (nothing numbered, nothing recorded). Phases may return a
 * Promise (stores behind async interfaces): the pipeline awaits one only when it is returned.
 */
import type { GuardCheck, GuardContext, ModelOutcome, Refusal, Step, StepOutcome, StepSink, WorkflowControl } from './types.js';
import { backoffMs, sleep } from '../limits/retry.js';

type Maybe<T> = T | Promise<T>;

/** The guard chain as the pipeline drives it (GuardChain; phases may become asynchronous). */
export interface PhasedChain {
  check(step: Step, ctx: GuardContext): Maybe<Refusal | undefined>;
  commit(step: Step): Maybe<Refusal | undefined>;
  rollback(step: Step): Maybe<void>;
  after(step: Step, outcome: StepOutcome): Maybe<void>;
}

/** The breaker board as the pipeline feeds it. */
export interface Breakers {
  check(server: string): Refusal | undefined;
  onFailure(server: string): void;
  onSuccess(server: string): void;
}

export interface PipelineDeps {
  chain: PhasedChain;
  sinks: readonly StepSink[];
  workflows: Pick<WorkflowControl, 'nextStep'>;
  breakers?: Breakers;
  /** Wait between attempts (tests pass a fake). */
  pause?: (attempt: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

/** What one attempt of the route produced. */
export interface Routed<T> {
  value: T;
  outcome: 'ok' | 'error';
  reason?: string;
  bytes?: number;
  tokens?: number;
  /** Model calls: usage, cost and timing, which `after` reconciles the reservation with. */
  model?: ModelOutcome;
  /** The upstream could not be reached or did not answer in time: feeds the breaker and may be retried. */
  transportFailure?: boolean;
  /** Do not try again even if the plan allows it (the answer has already reached the caller). */
  final?: boolean;
}

/** The route found that the name does not exist after all: the commits are rolled back and nothing is recorded. */
export interface Unrouted {
  unknown: true;
}

export interface StepPlan<T> {
  ctx?: GuardContext;
  checks?: readonly GuardCheck[];
  guards?: PhasedChain;
  breaker?: string;
  retryable?: (attempt: number) => boolean;
  signal?: AbortSignal;
  confirm?: () => Maybe<boolean>;
  route: (attempt: number) => Promise<Routed<T> | Unrouted>;
}

export type PipelineResult<T> =
  | { kind: 'done'; value: T; outcome: StepOutcome }
  /** `recorded` is false for a hidden name (`asUnknown`), which is answered as unknown and is not a step. */
  | { kind: 'refused'; refusal: Refusal; recorded: boolean }
  | { kind: 'unknown' };

export async function runPipeline<T>(deps: PipelineDeps, step: Step, plan: StepPlan<T>): Promise<PipelineResult<T>> {
  const chain = plan.guards ?? deps.chain;
  const ctx = plan.ctx ?? {};
  let refusal = plan.checks ? await runChecks(plan.checks, step, ctx) : undefined;
  if (!refusal) {
    const checked = chain.check(step, ctx);
    refusal = checked instanceof Promise ? await checked : checked;
  }
  if (refusal) return refuse(deps, step, refusal);
  if (plan.confirm) {
    const confirmed = plan.confirm();
    if (!(confirmed instanceof Promise ? await confirmed : confirmed)) return { kind: 'unknown' };
  }
  const committed = chain.commit(step);
  refusal = committed instanceof Promise ? await committed : committed;
  if (refusal) return refuse(deps, step, refusal);
  // The breaker is asked after the commits: a half-open circuit lets one probe through, which a refused commit must not use up.
  const open = plan.breaker !== undefined ? deps.breakers?.check(plan.breaker) : undefined;
  if (open) {
    const undone = chain.rollback(step);
    if (undone instanceof Promise) await undone;
    return refuse(deps, step, open);
  }
  try {
    const stepNo = deps.workflows.nextStep(step.workflowId);
    step.stepNo = stepNo instanceof Promise ? await stepNo : stepNo;
  } catch (err) {
    // No number, no step: what the commits took is given back, and the store's error is the one that goes on (a
    // rollback failing in the same outage leaves its reservation to expire as a dead replica's would).
    try {
      const undone = chain.rollback(step);
      if (undone instanceof Promise) await undone;
    } catch {
      // the numbering error below says what is wrong
    }
    throw err;
  }
  let routed: Routed<T> | Unrouted;
  try {
    routed = await plan.route(1);
    // The common path (an answer on the first attempt) takes no extra turn through a retry loop.
    if ('unknown' in routed || !routed.transportFailure) {
      if (plan.breaker !== undefined && !('unknown' in routed)) deps.breakers?.onSuccess(plan.breaker);
    } else routed = await retry(deps, plan, routed);
  } catch (err) {
    // A route that throws still ran: its reservation is reconciled and the step recorded before the error goes on.
    const done = finish(deps, step, chain, { outcome: 'error', reason: 'gateway_error', durationMs: elapsed(deps, step) });
    if (done) await done;
    throw err;
  }
  if ('unknown' in routed) {
    const undone = chain.rollback(step);
    if (undone instanceof Promise) await undone;
    return { kind: 'unknown' };
  }
  const outcome: StepOutcome = { outcome: routed.outcome, reason: routed.reason, durationMs: elapsed(deps, step) };
  if (routed.bytes !== undefined) outcome.bytes = routed.bytes;
  if (routed.tokens !== undefined) outcome.tokens = routed.tokens;
  if (routed.model !== undefined) outcome.model = routed.model;
  const done = finish(deps, step, chain, outcome);
  if (done) await done;
  return { kind: 'done', value: routed.value, outcome };
}

/** After a transport failure: the route tried again while the plan allows it; every transport failure feeds the breaker. */
async function retry<T>(deps: PipelineDeps, plan: StepPlan<T>, failed: Routed<T>): Promise<Routed<T> | Unrouted> {
  const server = plan.breaker;
  for (let attempt = 1; ; attempt++) {
    const r = attempt === 1 ? failed : await plan.route(attempt);
    if ('unknown' in r) return r;
    if (!r.transportFailure) {
      if (server !== undefined) deps.breakers?.onSuccess(server);
      return r;
    }
    if (server !== undefined) deps.breakers?.onFailure(server);
    if (r.final || plan.signal?.aborted || !plan.retryable?.(attempt)) return r;
    await (deps.pause ?? pauseBeforeRetry)(attempt, plan.signal).catch(() => {});
    if (plan.signal?.aborted) return r;
  }
}

function pauseBeforeRetry(attempt: number, signal?: AbortSignal): Promise<void> {
  return sleep(backoffMs(attempt), signal);
}

async function runChecks(checks: readonly GuardCheck[], step: Step, ctx: GuardContext): Promise<Refusal | undefined> {
  for (const check of checks) {
    const r = check(step, ctx);
    const verdict = r instanceof Promise ? await r : r;
    if (verdict) return verdict;
  }
  return undefined;
}

async function refuse<T>(deps: PipelineDeps, step: Step, refusal: Refusal): Promise<PipelineResult<T>> {
  // A hidden name is answered exactly like an unknown one and, like one, is not a step.
  if (refusal.asUnknown) return { kind: 'refused', refusal, recorded: false };
  const recorded = record(deps, step, { outcome: 'refused', reason: refusal.reason, durationMs: elapsed(deps, step) });
  if (recorded) await recorded;
  return { kind: 'refused', refusal, recorded: true };
}

/** `after`, then the sinks; a promise only when one of them returns one. */
function finish(deps: PipelineDeps, step: Step, chain: PhasedChain, outcome: StepOutcome): Promise<void> | undefined {
  const reconciled = chain.after(step, outcome);
  if (reconciled instanceof Promise) return reconciled.then(() => record(deps, step, outcome));
  return record(deps, step, outcome);
}

/**
 * Hand a step that is not routed (a read of a URI nothing serves, a step refused before it could be placed) to every
 * sink; it is numbered here. Resolves once a strict audit sink has committed it.
 */
export function record(deps: Pick<PipelineDeps, 'sinks' | 'workflows'>, step: Step, outcome: StepOutcome): Promise<void> | undefined {
  if (step.stepNo === 0) {
    const stepNo = deps.workflows.nextStep(step.workflowId);
    if (stepNo instanceof Promise) return stepNo.then((n) => ((step.stepNo = n), toSinks(deps, step, outcome)));
    step.stepNo = stepNo;
  }
  return toSinks(deps, step, outcome);
}

function toSinks(deps: Pick<PipelineDeps, 'sinks'>, step: Step, outcome: StepOutcome): Promise<void> | undefined {
  let waits: Promise<unknown>[] | undefined;
  for (const sink of deps.sinks) {
    const r = sink.record(step, outcome);
    if (r instanceof Promise) (waits ??= []).push(r);
  }
  return waits ? Promise.all(waits).then(() => undefined) : undefined;
}

function elapsed(deps: PipelineDeps, step: Step): number {
  return (deps.now ?? Date.now)() - step.startedAt;
}

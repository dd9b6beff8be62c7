/**
 * Budget and rate rules for workflows, agents and teams over a CounterStore: which limits apply to a step (most
 * binding first) and how a refusal reads. The store reserves atomically, so concurrent requests never overshoot.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AgentManifest, GatewayConfig, RateWindow } from '../config/types.js';
import type { Refusal, StepKind } from '../gateway/types.js';
import { COUNTER_DIMENSIONS, type CounterLimit, type CounterStore, type LimitBreach, type Reservation } from '../stores/counters.js';
import { reservationRefusal } from './limit-refusals.js';
import { MemoryCounterStore } from '../stores/memory/counters.js';
import { SqliteCounterStore } from '../stores/sqlite/counters.js';
import { mapAwaitable, type Awaitable } from '../stores/types.js';
import type { WindowName, WindowTotals } from './window.js';

export type AgentLimits = AgentManifest['limits'];
export type TeamLimits = GatewayConfig['teams'][string];
export type SubjectKind = 'agent' | 'team';

/** Totals of one workflow. */
export interface WorkflowUsage {
  steps: number;
  toolCalls: number;
  tokens: number;
  costUsd: number;
  /** Epoch ms of the first step seen; wall-seconds budgets count from here. */
  startedAt: number;
}

/** One step asking to be counted. */
export interface ConsumeRequest {
  workflowId: string;
  agentId: string;
  team?: string;
  kind: StepKind;
  agentLimits?: AgentLimits;
  teamLimits?: TeamLimits;
  /** Model calls: the estimate reserved at admission; it must fit every token and cost limit. */
  reserve?: ModelReserve;
}

/** Tokens and US dollars a model call holds from admission until it is reconciled with its usage. */
export interface ModelReserve {
  tokens: number;
  costUsd: number;
}

/** What is left of the tightest token and cost limits (undefined: no such limit applies). */
export interface Remaining {
  tokens?: number;
  costUsd?: number;
}

/** What the counters count: the stores' dimensions plus model dollars. */
export const LIMIT_DIMENSIONS: readonly string[] = [...COUNTER_DIMENSIONS, 'costUsd'];

/** Machine data of a limits refusal (error.data). */
export interface LimitRefusalData {
  /** e.g. 'workflow.toolCalls', 'perMinute.toolCalls', 'team.perDay.tokens'. */
  limit: string;
  used: number;
  max: number;
  workflowId: string;
  /** ISO time when capacity frees up again (rolling windows whose limit is above 0). */
  resetAt?: string;
  retryAfterSeconds?: number;
}

export interface LimitCountersOptions {
  /** Where counts live; default: SQLite in `dataDir`, or memory without one. */
  store?: CounterStore;
  /** Directory of `limits.db`; omit for memory-only counters (tests, or persistence off). */
  dataDir?: string;
  now?: () => number;
  /** Write-behind period. */
  flushMs?: number;
  /** Sub-buckets per rolling window (60 → 1 s buckets for perMinute, 1 min for perHour, 24 min for perDay). */
  bucketsPerWindow?: number;
  /** Workflows kept hot in memory; colder ones are reloaded from disk on their next step. */
  maxCachedWorkflows?: number;
  /** Workflows idle longer than this are deleted from disk at start. */
  retainWorkflowMs?: number;
  /** Write-behind failures; counting carries on in memory. */
  onError?: (err: unknown) => void;
  /** How long a model call's reservation is held without a reconcile before a shared store gives it back; default 15 min. */
  holdMs?: number;
}

export type WindowUsage = Record<WindowName, WindowTotals>;

/** Daily windows and workflow totals are budgets; shorter windows are rates that recover soon. */
function reasonFor(window: WindowName | 'total'): Refusal['reason'] {
  return window === 'perMinute' || window === 'perHour' ? 'rate_limited' : 'budget_exceeded';
}

const WINDOW_WORDS: Record<WindowName, string> = { perMinute: 'per-minute', perHour: 'per-hour', perDay: 'daily', perMonth: 'monthly' };

/** Checked most-binding first, so the refusal names the limit that will take longest to free up. */
const CHECK_ORDER: readonly WindowName[] = ['perMonth', 'perDay', 'perHour', 'perMinute'];

/** What one step adds: every kind a step and a call; tools/call a tool call too. */
const TOOL_AMOUNTS: Readonly<Record<string, number>> = Object.freeze({ calls: 1, toolCalls: 1 });
const STEP_AMOUNTS: Readonly<Record<string, number>> = Object.freeze({ calls: 1 });

/** Workflow budget names as users write them, by counted dimension. */
const WORKFLOW_NAMES: Readonly<Record<string, string>> = { calls: 'steps', toolCalls: 'toolCalls', tokens: 'tokens', costUsd: 'costUsd', ageSeconds: 'seconds' };

/** `model`: a model call reserving its estimate (tokens and dollars must fit); `reported`: one without (spent ≥ max refuses). */
type Family = 'tool' | 'model' | 'reported' | 'other';
const FAMILIES: readonly Family[] = ['tool', 'model', 'reported', 'other'];
const familyOf = (req: ConsumeRequest): Family => (req.kind === 'tools/call' ? 'tool' : req.kind === 'model/call' ? (req.reserve ? 'model' : 'reported') : 'other');

function modelLimits(out: CounterLimit[], subject: CounterLimit['subject'], window: CounterLimit['window'], limit: { tokens?: number; costUsd?: number }, family: Family): void {
  if (family !== 'model' && family !== 'reported') return;
  const mode = family === 'model' ? 'reserve' : 'spent';
  if (limit.tokens !== undefined) out.push({ subject, window, dimension: 'tokens', max: limit.tokens, mode });
  if (limit.costUsd !== undefined) out.push({ subject, window, dimension: 'costUsd', max: limit.costUsd, mode });
}

function windowLimits(out: CounterLimit[], subject: 'agent' | 'team', window: WindowName, limit: RateWindow | undefined, family: Family): void {
  if (!limit) return;
  // Calls reserve one unit; tokens are only known afterwards, so they refuse once the window is spent.
  if (limit.calls !== undefined) out.push({ subject, window, dimension: 'calls', max: limit.calls, mode: 'reserve' });
  if (family === 'tool' && limit.toolCalls !== undefined) out.push({ subject, window, dimension: 'toolCalls', max: limit.toolCalls, mode: 'reserve' });
  modelLimits(out, subject, window, limit, family);
}

/** The limits of a step, most binding first: the workflow's budget, then each window of the agent, then of its team. */
function compileLimits(agent: AgentLimits | undefined, team: TeamLimits | undefined, family: Family): CounterLimit[] {
  const out: CounterLimit[] = [];
  const wl = agent?.workflow;
  if (wl) {
    if (wl.seconds !== undefined) out.push({ subject: 'workflow', window: 'total', dimension: 'ageSeconds', max: wl.seconds, mode: 'spent' });
    if (wl.steps !== undefined) out.push({ subject: 'workflow', window: 'total', dimension: 'calls', max: wl.steps, mode: 'reserve' });
    if (family === 'tool' && wl.toolCalls !== undefined) out.push({ subject: 'workflow', window: 'total', dimension: 'toolCalls', max: wl.toolCalls, mode: 'reserve' });
    modelLimits(out, 'workflow', 'total', wl, family);
  }
  for (const name of CHECK_ORDER) {
    windowLimits(out, 'agent', name, agent?.[name], family);
    windowLimits(out, 'team', name, team?.[name], family);
  }
  return out;
}

const NO_LIMITS: readonly CounterLimit[] = Object.freeze([]);

export class LimitCounters {
  readonly store: CounterStore;
  private readonly now: () => number;
  /** Compiled limit lists per manifest `limits` object, team limits object and step family: built once per reload. */
  private readonly compiled = new WeakMap<object, Map<object | undefined, Record<Family, readonly CounterLimit[]>>>();
  private readonly teamOnly = new WeakMap<object, Record<Family, readonly CounterLimit[]>>();
  private lastReq?: ConsumeRequest;
  private lastReservation?: Reservation;
  /** Model reservations by request, from reservation to settle: each carries its own hold id. */
  private readonly held = new WeakMap<ConsumeRequest, Reservation>();
  private readonly holdMs: number;

  constructor(opts: LimitCountersOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.holdMs = opts.holdMs ?? 15 * 60_000;
    if (opts.store) this.store = opts.store;
    else if (opts.dataDir === undefined) this.store = new MemoryCounterStore({ ...opts, dimensions: LIMIT_DIMENSIONS });
    else {
      this.store = new SqliteCounterStore({ ...opts, dimensions: LIMIT_DIMENSIONS, file: join(opts.dataDir, 'limits.db') });
    }
  }

  /**
   * Count one step if every applicable limit allows it; otherwise consume nothing and return the refusal.
   * tools/call counts a step, a call and a tool call; other kinds count a step and a call. Token limits are
   * checked (used ≥ max refuses) only for model calls, since tokens are reported after the fact via addTokens.
   */
  tryConsume(req: ConsumeRequest): Awaitable<Refusal | undefined> {
    return this.refusalOf(req, this.store.reserve(this.reservationOf(req)));
  }

  /** Whether the step would fit every applicable limit now (the refusal tryConsume would give), consuming nothing. */
  check(req: ConsumeRequest): Awaitable<Refusal | undefined> {
    return this.refusalOf(req, this.store.check(this.reservationOf(req)));
  }

  /**
   * Give back what tryConsume counted for this request, for a step refused after its reservation. Exact when called
   * in the same tick as the reservation (the windows have not moved on); the workflow totals are exact always.
   */
  release(req: ConsumeRequest): Awaitable<void> {
    const r = this.reservationOf(req);
    this.held.delete(req);
    return this.store.release(r);
  }

  /** Report tokens spent (the model route calls this with the provider's usage). May overshoot; the next call is refused. */
  addTokens(workflowId: string, agentId: string, team: string | undefined, n: number): Awaitable<void> {
    if (!(n > 0)) return;
    return this.store.add({ workflowId, agentId, team }, { tokens: n });
  }

  /**
   * Replace a model call's reservation by what it really used (its usage, or nothing when it failed): the difference
   * is counted now, in the current bucket of each window.
   */
  settle(req: ConsumeRequest, used: ModelReserve): Awaitable<void> {
    if (!req.reserve) return;
    const r = this.reservationOf(req);
    this.held.delete(req);
    // A held reservation is settled even when nothing changed, so a shared store drops the hold now.
    if (!r.hold && used.tokens === req.reserve.tokens && used.costUsd === req.reserve.costUsd) return;
    return this.store.settle(r, { tokens: used.tokens, costUsd: used.costUsd });
  }

  /** What is left of the tightest token and cost limits for this request's workflow, agent and team. */
  remaining(req: ConsumeRequest): Awaitable<Remaining> {
    const wf = this.store.workflowTotals(req.workflowId);
    const agent = this.store.windowTotals('agent', req.agentId);
    const team = req.team === undefined ? undefined : this.store.windowTotals('team', req.team);
    if (wf instanceof Promise || agent instanceof Promise || team instanceof Promise) {
      return Promise.all([wf, agent, team]).then(([w, a, t]) => remainingOf(req, w?.totals, a, t));
    }
    return remainingOf(req, wf?.totals, agent, team);
  }

  /** Mark a workflow's wall-clock start explicitly (otherwise its first counted step starts the clock). */
  beginWorkflow(workflowId: string, startedAt = this.now()): Awaitable<void> {
    return this.store.beginWorkflow(workflowId, startedAt);
  }

  workflowUsage(workflowId: string): Awaitable<WorkflowUsage | undefined> {
    return mapAwaitable(this.store.workflowTotals(workflowId), (wf) =>
      wf && { steps: wf.totals.calls ?? 0, toolCalls: wf.totals.toolCalls ?? 0, tokens: wf.totals.tokens ?? 0, costUsd: wf.totals.costUsd ?? 0, startedAt: wf.startedAt },
    );
  }

  windowUsage(kind: SubjectKind, name: string): Awaitable<WindowUsage | undefined> {
    return this.store.windowTotals(kind, name);
  }

  /** Write changed counters to disk now (the store does this every flushMs). */
  flush(): Awaitable<void> {
    return this.store.flush();
  }

  /** Flush and close the store; counting still works in memory afterwards, without persistence. */
  close(): Awaitable<void> {
    return this.store.close();
  }

  /** The check and the commit of one step follow each other with the same request: it is built once. */
  private reservationOf(req: ConsumeRequest): Reservation {
    if (req === this.lastReq && this.lastReservation) return this.lastReservation;
    const kept = req.reserve ? this.held.get(req) : undefined;
    if (kept) return kept;
    const family = familyOf(req);
    const r: Reservation = {
      workflowId: req.workflowId,
      agentId: req.agentId,
      team: req.team,
      amounts: family === 'tool' ? TOOL_AMOUNTS : req.reserve ? { calls: 1, tokens: req.reserve.tokens, costUsd: req.reserve.costUsd } : STEP_AMOUNTS,
      limits: this.limitsOf(req.agentLimits, req.team === undefined ? undefined : req.teamLimits, family),
      hold: req.reserve ? { id: randomUUID(), ms: this.holdMs } : undefined,
    };
    if (req.reserve) this.held.set(req, r);
    this.lastReq = req;
    this.lastReservation = r;
    return r;
  }

  private limitsOf(agent: AgentLimits | undefined, team: TeamLimits | undefined, family: Family): readonly CounterLimit[] {
    if (!agent && !team) return NO_LIMITS;
    const build = (): Record<Family, readonly CounterLimit[]> => Object.fromEntries(FAMILIES.map((f) => [f, compileLimits(agent, team, f)])) as unknown as Record<Family, readonly CounterLimit[]>;
    if (!agent) {
      let byFamily = this.teamOnly.get(team!);
      if (!byFamily) this.teamOnly.set(team!, (byFamily = build()));
      return byFamily[family];
    }
    let byTeam = this.compiled.get(agent);
    if (!byTeam) this.compiled.set(agent, (byTeam = new Map()));
    let byFamily = byTeam.get(team);
    if (!byFamily) byTeam.set(team, (byFamily = build()));
    return byFamily[family];
  }

  private refusalOf(req: ConsumeRequest, breach: Awaitable<LimitBreach | undefined>): Awaitable<Refusal | undefined> {
    if (breach === undefined) return undefined;
    if (breach instanceof Promise) return breach.then((b) => b && this.render(req, b));
    return this.render(req, breach);
  }

  private render(req: ConsumeRequest, breach: LimitBreach): Refusal {
    const { limit } = breach;
    const reserved = req.reserve && (limit.dimension === 'tokens' || limit.dimension === 'costUsd') ? req.reserve[limit.dimension] : undefined;
    if (reserved !== undefined && limit.mode === 'reserve') {
      const tooBig = reservationRefusal(req, limit, breach.used, reserved);
      if (tooBig) return tooBig;
    }
    if (limit.subject === 'workflow') {
      const metric = WORKFLOW_NAMES[limit.dimension] ?? limit.dimension;
      const used = limit.dimension === 'ageSeconds' ? Math.floor(breach.used) : breach.used;
      const data: LimitRefusalData = { limit: `workflow.${metric}`, used, max: limit.max, workflowId: req.workflowId };
      return {
        reason: reasonFor('total'),
        message:
          `Workflow ${req.workflowId} has used its ${metric} budget (${used} of ${limit.max}); ` +
          `start a new workflow (new session), or an admin can raise limits.workflow.${metric} for agent ${req.agentId} in agents.d.`,
        data: { ...data },
      };
    }
    const name = limit.window as WindowName;
    const metric = limit.dimension;
    const isTeam = limit.subject === 'team';
    const { max } = limit;
    const used = breach.used;
    const now = this.now();
    const limitName = isTeam ? `team.${name}.${metric}` : `${name}.${metric}`;
    const whose = isTeam ? `team ${req.team}` : `agent ${req.agentId}`;
    const reason = reasonFor(name);
    const raise = isTeam ? `teams.${req.team}.${name}.${metric} in gateway.yaml` : `limits.${name}.${metric} in agents.d`;
    const resetAtMs = breach.freesAt;
    if (resetAtMs === undefined) {
      const data: LimitRefusalData = { limit: limitName, used, max, workflowId: req.workflowId };
      return {
        reason,
        message: `The ${WINDOW_WORDS[name]} ${metric} limit of ${whose} is 0, so waiting will not help; an admin can raise ${raise}.`,
        data: { ...data },
      };
    }
    const resetAt = new Date(resetAtMs).toISOString();
    const retryAfterSeconds = Math.max(1, Math.ceil((resetAtMs - now) / 1000));
    const next =
      reason === 'rate_limited'
        ? `retry after ${resetAt} (in ${retryAfterSeconds} s)`
        : `capacity frees up from ${resetAt}; an admin can raise ${raise}`;
    const data: LimitRefusalData = { limit: limitName, used, max, workflowId: req.workflowId, resetAt, retryAfterSeconds };
    return {
      reason,
      message: `The ${WINDOW_WORDS[name]} ${metric} limit of ${whose} is reached (${used} of ${max}); ${next}.`,
      data: { ...data },
    };
  }
}

/** The tightest of each limit left, from the totals a store answered. */
function remainingOf(req: ConsumeRequest, wf: Record<string, number> | undefined, agent: WindowUsage | undefined, team: WindowUsage | undefined): Remaining {
  const out: Remaining = {};
  const tighter = (metric: 'tokens' | 'costUsd', max: number | undefined, used: number | undefined) => {
    if (max === undefined) return;
    const left = max - (used ?? 0);
    out[metric] = out[metric] === undefined ? left : Math.min(out[metric]!, left);
  };
  for (const metric of ['tokens', 'costUsd'] as const) {
    tighter(metric, req.agentLimits?.workflow?.[metric], wf?.[metric]);
    for (const name of CHECK_ORDER) {
      tighter(metric, req.agentLimits?.[name]?.[metric], agent?.[name]?.[metric]);
      if (req.team !== undefined) tighter(metric, req.teamLimits?.[name]?.[metric], team?.[name]?.[metric]);
    }
  }
  return out;
}

/**
 * Budget and rate counters for workflows, agents and teams. Every check is synchronous and check-then-reserve in
 * one call, so concurrent requests (one JS thread) can never overshoot a limit. State is written behind to SQLite.
 */
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { AgentManifest, GatewayConfig, RateWindow } from '../config/types.js';
import type { Refusal, StepKind } from '../gateway/types.js';
import { LimitsStore, type StoredWindows, type SubjectKind, type WorkflowUsage } from './store.js';
import { reasonFor, shownAmount, WINDOW_WORDS, workflowRefusal } from './limit-refusals.js';
import { SubjectWindows, WINDOW_NAMES, type RollingWindow, type WindowMetric, type WindowName, type WindowTotals } from './window.js';

export type { WorkflowUsage } from './store.js';
export type AgentLimits = AgentManifest['limits'];
export type TeamLimits = GatewayConfig['teams'][string];

/** One step asking to be counted. */
export interface ConsumeRequest {
  workflowId: string;
  agentId: string;
  team?: string;
  kind: StepKind;
  agentLimits?: AgentLimits;
  teamLimits?: TeamLimits;
  /** Model calls: the estimate reserved at admission; it must fit every token and cost limit. */
  reserve?: Reservation;
}

/** Tokens and US dollars a model call holds from admission until it is reconciled with its usage. */
export interface Reservation {
  tokens: number;
  costUsd: number;
}

/** What is left of the tightest token and cost limits (undefined: no such limit applies). */
export interface Remaining {
  tokens?: number;
  costUsd?: number;
}

/** Machine data of a limits refusal (error.data). */
export interface LimitRefusalData {
  /** e.g. 'workflow.toolCalls', 'perMinute.toolCalls', 'team.perDay.tokens', 'perMonth.costUsd'. */
  limit: string;
  used: number;
  max: number;
  workflowId: string;
  /** ISO time when capacity frees up again (rolling windows whose limit is above 0). */
  resetAt?: string;
  retryAfterSeconds?: number;
}

export interface LimitCountersOptions {
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
}

export type WindowUsage = Record<WindowName, WindowTotals>;

const DAY_MS = 86_400_000;

/** Checked most-binding first, so the refusal names the limit that will take longest to free up. */
const CHECK_ORDER: readonly WindowName[] = ['perMonth', 'perDay', 'perHour', 'perMinute'];

/** Whether `need` more fits under `max` with `used` spent: a spent limit refuses even a call that reserves nothing. */
function fits(used: number, need: number, max: number): boolean {
  return used < max && used + need <= max + 1e-9;
}

const NO_RESERVE: Reservation = { tokens: 0, costUsd: 0 };

export class LimitCounters {
  private readonly now: () => number;
  private readonly buckets: number;
  private readonly store?: LimitsStore;
  private readonly onError: (err: unknown) => void;
  private readonly workflows: LRUCache<string, WorkflowUsage>;
  /** Changed workflows awaiting the next flush; holds them even if the LRU drops them meanwhile. */
  private readonly dirtyWorkflows = new Map<string, WorkflowUsage>();
  private readonly agents = new Map<string, SubjectWindows>();
  private readonly teams = new Map<string, SubjectWindows>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(opts: LimitCountersOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.buckets = opts.bucketsPerWindow ?? 60;
    this.onError = opts.onError ?? ((err) => process.emitWarning(`limits.db write failed: ${String(err)}`));
    this.workflows = new LRUCache<string, WorkflowUsage>({ max: opts.maxCachedWorkflows ?? 50_000 });
    if (opts.dataDir === undefined) return;

    this.store = new LimitsStore(join(opts.dataDir, 'limits.db'));
    const now = this.now();
    this.store.pruneWorkflows(now - (opts.retainWorkflowMs ?? 7 * DAY_MS));
    for (const saved of this.store.loadWindows()) this.restoreWindows(saved, now);
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 200);
    // The write-behind timer must never keep the process alive on its own.
    this.timer.unref();
  }

  /**
   * Count one step if every applicable limit allows it; otherwise consume nothing and return the refusal.
   * tools/call counts a step, a call and a tool call; other kinds count a step and a call. Token limits are
   * checked (used ≥ max refuses) only for model calls, since tokens are reported after the fact via addTokens.
   */
  tryConsume(req: ConsumeRequest): Refusal | undefined {
    const now = this.now();
    const wf = this.workflow(req.workflowId, now);
    const agent = this.subject('agent', req.agentId, now);
    const team = req.team === undefined ? undefined : this.subject('team', req.team, now);
    const refusal = this.refusalFor(req, now, wf, agent, team);
    if (refusal) return refusal;
    this.count(req, wf, agent, team, 1);
    return undefined;
  }

  /** Whether the step would fit every applicable limit now (the refusal tryConsume would give), consuming nothing. */
  check(req: ConsumeRequest): Refusal | undefined {
    const now = this.now();
    const wf = this.workflow(req.workflowId, now);
    const agent = this.subject('agent', req.agentId, now);
    const team = req.team === undefined ? undefined : this.subject('team', req.team, now);
    return this.refusalFor(req, now, wf, agent, team);
  }

  /**
   * Give back what tryConsume counted for this request, for a step refused after its reservation. Exact when called
   * in the same tick as the reservation (the windows have not moved on); the workflow totals are exact always.
   */
  release(req: ConsumeRequest): void {
    const wf = this.dirtyWorkflows.get(req.workflowId) ?? this.workflows.get(req.workflowId);
    const agent = this.agents.get(req.agentId);
    const team = req.team === undefined ? undefined : this.teams.get(req.team);
    if (wf && agent) this.count(req, wf, agent, team, -1);
  }

  private refusalFor(req: ConsumeRequest, now: number, wf: WorkflowUsage, agent: SubjectWindows, team: SubjectWindows | undefined): Refusal | undefined {
    const isTool = req.kind === 'tools/call';
    const isModel = req.kind === 'model/call';
    const wl = req.agentLimits?.workflow;
    if (wl) {
      if (wl.seconds !== undefined && now - wf.startedAt >= wl.seconds * 1000) {
        return workflowRefusal(req, 'seconds', Math.floor((now - wf.startedAt) / 1000), wl.seconds);
      }
      if (wl.steps !== undefined && wf.steps + 1 > wl.steps) return workflowRefusal(req, 'steps', wf.steps, wl.steps);
      if (isTool && wl.toolCalls !== undefined && wf.toolCalls + 1 > wl.toolCalls) {
        return workflowRefusal(req, 'toolCalls', wf.toolCalls, wl.toolCalls);
      }
      const need = req.reserve ?? NO_RESERVE;
      if (isModel && wl.tokens !== undefined && !fits(wf.tokens, need.tokens, wl.tokens)) {
        return workflowRefusal(req, 'tokens', wf.tokens, wl.tokens, need.tokens);
      }
      if (isModel && wl.costUsd !== undefined && !fits(wf.costUsd, need.costUsd, wl.costUsd)) {
        return workflowRefusal(req, 'costUsd', wf.costUsd, wl.costUsd, need.costUsd);
      }
    }
    for (const name of CHECK_ORDER) {
      const refusal =
        this.checkWindow(req, agent[name], req.agentLimits?.[name], name, '', isTool, isModel, now) ??
        (team && this.checkWindow(req, team[name], req.teamLimits?.[name], name, `team ${req.team}`, isTool, isModel, now));
      if (refusal) return refusal;
    }
    return undefined;
  }

  private count(req: ConsumeRequest, wf: WorkflowUsage, agent: SubjectWindows, team: SubjectWindows | undefined, n: 1 | -1): void {
    const isTool = req.kind === 'tools/call';
    wf.steps += n;
    if (isTool) wf.toolCalls += n;
    const r = req.reserve;
    if (r) {
      wf.tokens += n * r.tokens;
      wf.costUsd += n * r.costUsd;
    }
    this.dirtyWorkflows.set(req.workflowId, wf);
    for (const w of team ? [agent, team] : [agent]) {
      w.add('calls', n);
      if (isTool) w.add('toolCalls', n);
      if (r) {
        w.add('tokens', n * r.tokens);
        w.add('costUsd', n * r.costUsd);
      }
    }
  }

  /**
   * Replace a reservation made at `reservedAt` by what the call really used (its usage, or nothing when it failed).
   * Window corrections land in the bucket of the reservation, so they leave the window together with it.
   */
  settle(req: ConsumeRequest, reservedAt: number, used: Reservation): void {
    const r = req.reserve ?? NO_RESERVE;
    const dTokens = used.tokens - r.tokens;
    const dCost = used.costUsd - r.costUsd;
    if (dTokens === 0 && dCost === 0) return;
    const now = this.now();
    const wf = this.workflow(req.workflowId, now);
    wf.tokens = Math.max(0, wf.tokens + dTokens);
    wf.costUsd = Math.max(0, wf.costUsd + dCost);
    this.dirtyWorkflows.set(req.workflowId, wf);
    const subjects = [this.subject('agent', req.agentId, now)];
    if (req.team !== undefined) subjects.push(this.subject('team', req.team, now));
    for (const w of subjects) {
      w.addAt('tokens', dTokens, reservedAt);
      w.addAt('costUsd', dCost, reservedAt);
    }
  }

  /** What is left of the tightest token and cost limits for this request's workflow, agent and team. */
  remaining(req: ConsumeRequest): Remaining {
    const now = this.now();
    const out: Remaining = {};
    const tighter = (metric: 'tokens' | 'costUsd', max: number | undefined, used: number) => {
      if (max === undefined) return;
      const left = max - used;
      out[metric] = out[metric] === undefined ? left : Math.min(out[metric]!, left);
    };
    const wf = this.workflow(req.workflowId, now);
    tighter('tokens', req.agentLimits?.workflow?.tokens, wf.tokens);
    tighter('costUsd', req.agentLimits?.workflow?.costUsd, wf.costUsd);
    const agent = this.subject('agent', req.agentId, now);
    const team = req.team === undefined ? undefined : this.subject('team', req.team, now);
    for (const name of WINDOW_NAMES) {
      for (const metric of ['tokens', 'costUsd'] as const) {
        tighter(metric, req.agentLimits?.[name]?.[metric], agent[name].total(metric));
        if (team) tighter(metric, req.teamLimits?.[name]?.[metric], team[name].total(metric));
      }
    }
    return out;
  }

  /** Report tokens spent (the model route calls this with the provider's usage). May overshoot; the next call is refused. */
  addTokens(workflowId: string, agentId: string, team: string | undefined, n: number): void {
    if (!(n > 0)) return;
    const now = this.now();
    const wf = this.workflow(workflowId, now);
    wf.tokens += n;
    this.dirtyWorkflows.set(workflowId, wf);
    this.subject('agent', agentId, now).add('tokens', n);
    if (team !== undefined) this.subject('team', team, now).add('tokens', n);
  }

  /** Mark a workflow's wall-clock start explicitly (otherwise its first counted step starts the clock). */
  beginWorkflow(workflowId: string, startedAt = this.now()): void {
    const wf = this.workflow(workflowId, startedAt);
    wf.startedAt = Math.min(wf.startedAt, startedAt);
    this.dirtyWorkflows.set(workflowId, wf);
  }

  workflowUsage(workflowId: string): WorkflowUsage | undefined {
    const wf = this.dirtyWorkflows.get(workflowId) ?? this.workflows.get(workflowId) ?? this.store?.loadWorkflow(workflowId);
    return wf && { ...wf };
  }

  windowUsage(kind: SubjectKind, name: string): WindowUsage | undefined {
    const windows = (kind === 'agent' ? this.agents : this.teams).get(name);
    if (!windows) return undefined;
    const now = this.now();
    return {
      perMinute: windows.perMinute.totalsAt(now),
      perHour: windows.perHour.totalsAt(now),
      perDay: windows.perDay.totalsAt(now),
      perMonth: windows.perMonth.totalsAt(now),
    };
  }

  /** Write changed counters to disk now (the timer does this every flushMs). */
  flush(): void {
    if (!this.store) return;
    const workflows = [...this.dirtyWorkflows];
    const windows: StoredWindows[] = [];
    for (const [kind, map] of [['agent', this.agents], ['team', this.teams]] as const) {
      for (const [name, w] of map) {
        if (!w.dirty) continue;
        windows.push({ kind, name, windows: { perMinute: w.perMinute.snapshot(), perHour: w.perHour.snapshot(), perDay: w.perDay.snapshot(), perMonth: w.perMonth.snapshot() } });
      }
    }
    if (workflows.length === 0 && windows.length === 0) return;
    try {
      this.store.write(workflows, windows, this.now());
      this.dirtyWorkflows.clear();
      for (const map of [this.agents, this.teams]) for (const w of map.values()) w.dirty = false;
    } catch (err) {
      this.onError(err);
    }
  }

  /** Flush and close the database; counting still works in memory afterwards, without persistence. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.flush();
    this.store?.close();
  }

  private workflow(id: string, now: number): WorkflowUsage {
    let wf = this.dirtyWorkflows.get(id) ?? this.workflows.get(id);
    if (!wf) {
      wf = (!this.closed && this.store?.loadWorkflow(id)) || { steps: 0, toolCalls: 0, tokens: 0, costUsd: 0, startedAt: now };
      this.workflows.set(id, wf);
    }
    return wf;
  }

  private subject(kind: SubjectKind, name: string, now: number): SubjectWindows {
    const map = kind === 'agent' ? this.agents : this.teams;
    let w = map.get(name);
    if (!w) {
      w = new SubjectWindows(this.buckets, now);
      map.set(name, w);
    } else {
      w.advance(now);
    }
    return w;
  }

  private restoreWindows(saved: StoredWindows, now: number): void {
    const map = saved.kind === 'agent' ? this.agents : this.teams;
    map.set(saved.name, new SubjectWindows(this.buckets, now, saved.windows));
  }

  private checkWindow(
    req: ConsumeRequest,
    window: RollingWindow,
    limit: RateWindow | undefined,
    name: WindowName,
    owner: string,
    isTool: boolean,
    isModel: boolean,
    now: number,
  ): Refusal | undefined {
    if (!limit) return undefined;
    // Calls reserve one unit; model calls reserve their estimate of tokens and cost (reconciled afterwards).
    const need = req.reserve ?? NO_RESERVE;
    let metric: WindowMetric | undefined;
    let needed = 1;
    if (limit.calls !== undefined && window.total('calls') + 1 > limit.calls) metric = 'calls';
    else if (isTool && limit.toolCalls !== undefined && window.total('toolCalls') + 1 > limit.toolCalls) metric = 'toolCalls';
    else if (isModel && limit.tokens !== undefined && !fits(window.total('tokens'), need.tokens, limit.tokens)) [metric, needed] = ['tokens', need.tokens];
    else if (isModel && limit.costUsd !== undefined && !fits(window.total('costUsd'), need.costUsd, limit.costUsd)) [metric, needed] = ['costUsd', need.costUsd];
    if (!metric) return undefined;

    const max = limit[metric] as number;
    const used = window.total(metric);
    const tooBig = needed > max && max > 0 && (metric === 'tokens' || metric === 'costUsd');
    const limitName = owner ? `team.${name}.${metric}` : `${name}.${metric}`;
    const whose = owner || `agent ${req.agentId}`;
    const reason = reasonFor(name);
    const raise = owner ? `teams.${req.team}.${name}.${metric} in gateway.yaml` : `limits.${name}.${metric} in agents.d`;
    if (tooBig) {
      const data: LimitRefusalData = { limit: limitName, used, max, workflowId: req.workflowId };
      return {
        reason: 'budget_exceeded',
        message: `This call alone reserves ${shownAmount(metric, needed)}, more than the ${WINDOW_WORDS[name]} ${metric} limit of ${whose} (${shownAmount(metric, max)}); ask for fewer output tokens (max_tokens) or send a shorter conversation.`,
        data: { ...data, reserved: needed },
      };
    }
    // Capacity frees up once the window's total leaves room for what this call reserves.
    const resetAtMs = window.freesAt(metric, (metric === 'tokens' || metric === 'costUsd') && needed > 0 ? Math.max(1e-9, max - needed + 1e-9) : max, now);
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

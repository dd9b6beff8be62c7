/** Counters in process memory: rolling windows per agent and team, totals per workflow (LRU-bounded). */
import { LRUCache } from 'lru-cache';
import { SubjectWindows as Windows, type RollingWindow, type WindowSnapshot } from '../../limits/window.js';
import {
  COUNTER_DIMENSIONS,
  type CounterKeys,
  type CounterLimit,
  type CounterStore,
  type LimitBreach,
  type Reservation,
  type SubjectWindows,
  type WorkflowTotals,
} from '../counters.js';
import type { Clock } from '../types.js';

export interface MemoryCounterOptions {
  now?: Clock;
  /** Sub-buckets per rolling window (60 → 1 s buckets for perMinute, 1 min for perHour, 24 min for perDay). */
  bucketsPerWindow?: number;
  /** Workflows kept in memory; the least recently used are forgotten (or, persisted, reloaded on their next step). */
  maxCachedWorkflows?: number;
  /** Counted dimensions; default COUNTER_DIMENSIONS. */
  dimensions?: readonly string[];
}

/** A workflow's totals by dimension position. */
export interface WorkflowCounts {
  startedAt: number;
  counts: Float64Array;
}

export class MemoryCounterStore implements CounterStore {
  protected readonly now: Clock;
  protected readonly buckets: number;
  readonly dimensions: readonly string[];
  private readonly index: ReadonlyMap<string, number>;
  protected readonly workflows: LRUCache<string, WorkflowCounts>;
  /** Changed workflows since the last flush; holds them even if the LRU drops them meanwhile. */
  protected readonly dirtyWorkflows = new Map<string, WorkflowCounts>();
  protected readonly agents = new Map<string, Windows>();
  protected readonly teams = new Map<string, Windows>();

  constructor(opts: MemoryCounterOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.buckets = opts.bucketsPerWindow ?? 60;
    this.dimensions = opts.dimensions ?? COUNTER_DIMENSIONS;
    this.index = new Map(this.dimensions.map((d, i) => [d, i]));
    this.workflows = new LRUCache<string, WorkflowCounts>({ max: opts.maxCachedWorkflows ?? 50_000 });
  }

  check(r: Reservation): LimitBreach | undefined {
    const now = this.now();
    return this.breachOf(r, now, this.workflow(r.workflowId, now), this.subject(this.agents, r.agentId, now), r.team === undefined ? undefined : this.subject(this.teams, r.team, now));
  }

  reserve(r: Reservation): LimitBreach | undefined {
    const now = this.now();
    const wf = this.workflow(r.workflowId, now);
    const agent = this.subject(this.agents, r.agentId, now);
    const team = r.team === undefined ? undefined : this.subject(this.teams, r.team, now);
    const breach = this.breachOf(r, now, wf, agent, team);
    if (breach) return breach;
    this.count(r.workflowId, r.amounts, wf, agent, team, 1);
    return undefined;
  }

  release(r: Reservation): void {
    const wf = this.dirtyWorkflows.get(r.workflowId) ?? this.workflows.get(r.workflowId);
    const agent = this.agents.get(r.agentId);
    const team = r.team === undefined ? undefined : this.teams.get(r.team);
    if (wf && agent) this.count(r.workflowId, r.amounts, wf, agent, team, -1);
  }

  /** Holds never lapse here: they live in this process, and go with it. */
  settle(r: Reservation, used: Readonly<Record<string, number>>): void {
    const delta: Record<string, number> = {};
    let any = false;
    for (const dim in used) {
      const d = used[dim]! - (r.amounts[dim] ?? 0);
      if (d !== 0 || !Number.isFinite(d)) (delta[dim] = d), (any = true);
    }
    if (any) this.add(r, delta);
  }

  add(keys: CounterKeys, amounts: Readonly<Record<string, number>>): void {
    const now = this.now();
    const team = keys.team === undefined ? undefined : this.subject(this.teams, keys.team, now);
    this.count(keys.workflowId, amounts, this.workflow(keys.workflowId, now), this.subject(this.agents, keys.agentId, now), team, 1);
  }

  beginWorkflow(workflowId: string, startedAt: number): void {
    const wf = this.workflow(workflowId, startedAt);
    wf.startedAt = Math.min(wf.startedAt, startedAt);
    this.dirtyWorkflows.set(workflowId, wf);
  }

  workflowTotals(workflowId: string): WorkflowTotals | undefined {
    const wf = this.dirtyWorkflows.get(workflowId) ?? this.workflows.get(workflowId) ?? this.loadWorkflow(workflowId);
    if (!wf) return undefined;
    const totals: Record<string, number> = {};
    for (let m = 0; m < this.dimensions.length; m++) totals[this.dimensions[m]!] = wf.counts[m]!;
    return { startedAt: wf.startedAt, totals };
  }

  windowTotals(subject: 'agent' | 'team', name: string): SubjectWindows | undefined {
    const w = (subject === 'agent' ? this.agents : this.teams).get(name);
    if (!w) return undefined;
    const now = this.now();
    return { perMinute: w.perMinute.totalsAt(now), perHour: w.perHour.totalsAt(now), perDay: w.perDay.totalsAt(now), perMonth: w.perMonth.totalsAt(now) };
  }

  flush(): void {}

  close(): void {}

  /** A workflow not in memory; persistent stores load it here. */
  protected loadWorkflow(_workflowId: string): WorkflowCounts | undefined {
    return undefined;
  }

  protected restoreWindows(subject: 'agent' | 'team', name: string, snapshots: Partial<Record<'perMinute' | 'perHour' | 'perDay' | 'perMonth', WindowSnapshot>>, now: number): void {
    (subject === 'agent' ? this.agents : this.teams).set(name, new Windows(this.buckets, now, snapshots, this.dimensions));
  }

  private workflow(id: string, now: number): WorkflowCounts {
    let wf = this.dirtyWorkflows.get(id) ?? this.workflows.get(id);
    if (!wf) {
      wf = this.loadWorkflow(id) ?? { startedAt: now, counts: new Float64Array(this.dimensions.length) };
      this.workflows.set(id, wf);
    }
    return wf;
  }

  private subject(map: Map<string, Windows>, name: string, now: number): Windows {
    let w = map.get(name);
    if (!w) map.set(name, (w = new Windows(this.buckets, now, {}, this.dimensions)));
    else w.advance(now);
    return w;
  }

  private count(workflowId: string, amounts: Readonly<Record<string, number>>, wf: WorkflowCounts, agent: Windows, team: Windows | undefined, sign: 1 | -1): void {
    // Validated first, so bad input counts nothing rather than part of the step.
    for (const dim in amounts) {
      this.dimensionIndex(dim);
      if (!Number.isFinite(amounts[dim])) throw new RangeError(`amount of "${dim}" must be a finite number, got ${amounts[dim]}; nothing was counted`);
    }
    for (const dim in amounts) {
      const m = this.index.get(dim)!;
      const n = amounts[dim]!;
      if (n === 0) continue;
      wf.counts[m] += sign * n;
      agent.addAt(m, sign * n);
      team?.addAt(m, sign * n);
    }
    this.dirtyWorkflows.set(workflowId, wf);
  }

  private breachOf(r: Reservation, now: number, wf: WorkflowCounts, agent: Windows, team: Windows | undefined): LimitBreach | undefined {
    const limits = r.limits;
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i]!;
      if (limit.subject === 'workflow') {
        const used = limit.dimension === 'ageSeconds' ? (now - wf.startedAt) / 1000 : this.workflowUsed(wf, limit.dimension);
        if (this.breaks(limit, used, r.amounts)) return { limit, used };
        continue;
      }
      const subject = limit.subject === 'agent' ? agent : team;
      if (!subject || limit.window === 'total') continue;
      const window: RollingWindow = subject[limit.window];
      const used = window.totalAt(this.dimensionIndex(limit.dimension));
      if (!this.breaks(limit, used, r.amounts)) continue;
      // A reservation of more than one unit (a model call's tokens or dollars) fits once the window leaves room for all of it.
      const need = limit.mode === 'reserve' ? (r.amounts[limit.dimension] ?? 0) : 0;
      return { limit, used, freesAt: window.freesAt(limit.dimension, need > 1 || !Number.isInteger(need) ? Math.max(1e-9, limit.max - need + 1e-9) : limit.max, now) };
    }
    return undefined;
  }

  private workflowUsed(wf: WorkflowCounts, dimension: string): number {
    return wf.counts[this.dimensionIndex(dimension)]!;
  }

  /** Position of a counted dimension; a name this store was not built with is a configuration error, not a zero. */
  private dimensionIndex(dimension: string): number {
    const m = this.index.get(dimension);
    if (m === undefined) {
      throw new RangeError(`counter dimension "${dimension}" is not counted by this store (it counts ${this.dimensions.join(', ')}); build the store with dimensions including it`);
    }
    return m;
  }

  private breaks(limit: CounterLimit, used: number, amounts: Readonly<Record<string, number>>): boolean {
    if (limit.mode === 'spent') return used >= limit.max;
    return used + (amounts[limit.dimension] ?? 0) > limit.max;
  }
}

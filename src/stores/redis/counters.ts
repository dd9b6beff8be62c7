/**
 * Counters and rolling windows in Redis, shared by every replica:
 *
 *   new RedisCounterStore({ client, dimensions: LIMIT_DIMENSIONS, now?, bucketsPerWindow?, retainWorkflowMs? })
 *
 * The same contract as the memory and SQLite stores (test/stores/counters.contract.test.ts): each call is one Lua
 * script (EVALSHA through ioredis defineCommand), so check-and-reserve is atomic across replicas and a window rolls
 * over inside the script that counts, never losing another replica's spend. A reservation with a `hold` (a model
 * call's estimate) lapses after `hold.ms` unless settled or released: the next reserve or check on any replica gives
 * it back where it was counted, so a replica that died mid-call holds nothing for ever. Every replica must use the
 * same bucketsPerWindow and dimensions, and keep its clock in sync (NTP): windows are indexed by the callers' time.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { WINDOW_NAMES, WINDOW_SPAN_MS, type WindowTotals } from '../../limits/window.js';
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
import type { RedisClient, StoreHealth } from './client.js';
import { countersLua } from './counters.lua.js';

export interface RedisCounterOptions {
  client: RedisClient;
  now?: Clock;
  /** Sub-buckets per rolling window; default 60 (as the embedded stores). */
  bucketsPerWindow?: number;
  /** Counted dimensions; default COUNTER_DIMENSIONS. */
  dimensions?: readonly string[];
  /** A workflow's totals expire this long after its last step; default 30 days. */
  retainWorkflowMs?: number;
  /** Lapsed holds given back per script run at most (the rest on the next runs); default 50. */
  sweepPerCall?: number;
}

type CountersRedis = Redis & Record<string, (...args: Array<string | number>) => Promise<string[] | null>>;

interface ScriptRequest {
  op: 'add' | 'release' | 'settle' | 'touch' | 'windows' | 'begin';
  wf?: string;
  agent?: string;
  team?: string;
  /** Amounts as decimal strings (JavaScript's shortest exact form): Redis adds them without a conversion in Lua. */
  amt?: Readonly<Record<string, string>>;
  hold?: { id: string; ms: number; exp: number };
  used?: Readonly<Record<string, number>>;
  kind?: 'a' | 't';
  name?: string;
  at?: number;
}

const DAY_MS = 86_400_000;

export class RedisCounterStore implements CounterStore {
  readonly dimensions: readonly string[];
  private readonly client: RedisClient;
  private readonly now: Clock;
  private readonly dimSet: ReadonlySet<string>;
  private readonly windows: Array<[string, number, number]>;
  private readonly retain: number;
  private readonly sweep: number;
  /** The ioredis command of this store's script (constants differ per configuration, so does the script). */
  private readonly command: string;
  /** Window index (1-based, 0: total) by window name, as the script numbers them. */
  private readonly windowIndex: ReadonlyMap<string, number>;
  /** When a reservation's check passed: a workflow the check did not write starts then, as in the embedded stores. */
  private readonly checkedAt = new WeakMap<Reservation, number>();

  constructor(opts: RedisCounterOptions) {
    this.client = opts.client;
    this.now = opts.now ?? Date.now;
    this.dimensions = opts.dimensions ?? COUNTER_DIMENSIONS;
    this.dimSet = new Set(this.dimensions);
    const n = opts.bucketsPerWindow ?? 60;
    this.windows = WINDOW_NAMES.map((w) => [w, Math.max(1, Math.floor(WINDOW_SPAN_MS[w] / n)), n]);
    this.retain = opts.retainWorkflowMs ?? 30 * DAY_MS;
    this.sweep = opts.sweepPerCall ?? 50;
    this.windowIndex = new Map(this.windows.map(([w], i) => [w, i + 1]));
    const lua = countersLua({ prefix: this.client.keyPrefix, dimensions: this.dimensions, windows: this.windows, retainMs: this.retain, sweepPerCall: this.sweep });
    this.command = `switchyardCounters${createHash('sha1').update(lua).digest('hex').slice(0, 12)}`;
    if (typeof (this.client.redis as unknown as Record<string, unknown>)[this.command] !== 'function') this.client.redis.defineCommand(this.command, { numberOfKeys: 0, lua });
  }

  check(r: Reservation): Promise<LimitBreach | undefined> {
    return this.breach('check', r);
  }

  reserve(r: Reservation): Promise<LimitBreach | undefined> {
    return this.breach('reserve', r);
  }

  async release(r: Reservation): Promise<void> {
    await this.validated(r, r.amounts, r.limits);
    await this.run({ op: 'release', ...this.keysOf(r), amt: decimals(r.amounts), hold: this.holdOf(r) });
  }

  async settle(r: Reservation, used: Readonly<Record<string, number>>): Promise<void> {
    await this.validated(r, { ...r.amounts, ...used }, []);
    await this.run({ op: 'settle', ...this.keysOf(r), amt: decimals(r.amounts), used, hold: this.holdOf(r) });
  }

  async add(keys: CounterKeys, amounts: Readonly<Record<string, number>>): Promise<void> {
    await this.validated(keys, amounts, []);
    await this.run({ op: 'add', ...this.keysOf(keys), amt: decimals(amounts) });
  }

  async beginWorkflow(workflowId: string, startedAt: number): Promise<void> {
    await this.run({ op: 'begin', wf: workflowId, at: startedAt });
  }

  async workflowTotals(workflowId: string): Promise<WorkflowTotals | undefined> {
    const h = await this.client.call((r) => r.hgetall(this.client.key(`c:wf:${workflowId}`)));
    if (h['@s'] === undefined) return undefined;
    const totals: Record<string, number> = {};
    for (const d of this.dimensions) totals[d] = Number(h[d] ?? 0);
    return { startedAt: Number(h['@s']), totals };
  }

  async windowTotals(subject: 'agent' | 'team', name: string): Promise<SubjectWindows | undefined> {
    const out = await this.run({ op: 'windows', kind: subject === 'agent' ? 'a' : 't', name });
    if (!out) return undefined;
    const M = this.dimensions.length;
    const result: Partial<SubjectWindows> = {};
    this.windows.forEach(([w], i) => {
      const totals: Record<string, number> = {};
      for (let m = 0; m < M; m++) totals[this.dimensions[m]!] = Number(out[i * M + m]);
      result[w as keyof SubjectWindows] = totals as WindowTotals;
    });
    return result as SubjectWindows;
  }

  health(): StoreHealth {
    return this.client.health();
  }

  flush(): void {}

  /** The client is the caller's (shared by every Redis store of the process): it closes it. */
  close(): void {}

  private async breach(op: 'check' | 'reserve', r: Reservation): Promise<LimitBreach | undefined> {
    await this.validated(r, r.amounts, r.limits);
    const now = this.now();
    const args: Array<string | number> = [op, now, r.workflowId, r.agentId, r.team === undefined ? '' : `=${r.team}`];
    for (const d of this.dimensions) {
      const a = r.amounts[d];
      args.push(a === undefined ? '' : String(a));
    }
    args.push(r.limits.length);
    for (const l of r.limits) {
      args.push(l.subject === 'workflow' ? 'w' : l.subject === 'agent' ? 'a' : 't', this.windowIndex.get(l.window) ?? 0, l.dimension, l.max, l.mode === 'reserve' ? 'r' : 's', threshold(l, r.amounts));
    }
    args.push(op === 'reserve' ? (this.checkedAt.get(r) ?? '') : '');
    if (op === 'reserve' && r.hold) {
      args.push(r.hold.id, r.hold.ms, now + r.hold.ms, JSON.stringify({ wf: r.workflowId, agent: r.agentId, team: r.team, amt: decimals(r.amounts) }));
    }
    const out = await this.client.call((redis) => (redis as unknown as CountersRedis)[this.command]!(...args));
    if (!out) {
      if (op === 'check') this.checkedAt.set(r, now);
      return undefined;
    }
    const limit = r.limits[Number(out[0]) - 1]!;
    const used = Number(out[1]);
    if (out[2] === 'x') return { limit, used };
    return { limit, used, freesAt: out[2] === '' ? undefined : Number(out[2]) };
  }

  private keysOf(k: CounterKeys): Pick<ScriptRequest, 'wf' | 'agent' | 'team'> {
    return { wf: k.workflowId, agent: k.agentId, team: k.team };
  }

  private holdOf(r: Reservation): ScriptRequest['hold'] {
    return r.hold && { id: r.hold.id, ms: r.hold.ms, exp: this.now() + r.hold.ms };
  }

  private run(req: ScriptRequest): Promise<string[] | null> {
    const json = JSON.stringify({ ...req, now: this.now() });
    return this.client.call((redis) => (redis as unknown as CountersRedis)[this.command]!(req.op, json));
  }

  /**
   * Bad input is refused before anything is counted; as in the embedded stores, the workflow and its subjects exist
   * afterwards (empty), which is all a refused call leaves behind.
   */
  private async validated(keys: CounterKeys, amounts: Readonly<Record<string, number>>, limits: readonly CounterLimit[]): Promise<void> {
    const problem = this.problemOf(amounts, limits);
    if (!problem) return;
    await this.run({ op: 'touch', ...this.keysOf(keys) });
    throw new RangeError(problem);
  }

  private problemOf(amounts: Readonly<Record<string, number>>, limits: readonly CounterLimit[]): string | undefined {
    for (const l of limits) {
      if (l.subject === 'workflow' && l.dimension === 'ageSeconds') continue;
      if (!this.dimSet.has(l.dimension)) return this.notCounted(l.dimension);
    }
    for (const dim in amounts) {
      if (!this.dimSet.has(dim)) return this.notCounted(dim);
      if (!Number.isFinite(amounts[dim])) return `amount of "${dim}" must be a finite number, got ${amounts[dim]}; nothing was counted`;
    }
    return undefined;
  }

  private notCounted(dimension: string): string {
    return `counter dimension "${dimension}" is not counted by this store (it counts ${this.dimensions.join(', ')}); build the store with dimensions including it`;
  }
}

function decimals(amounts: Readonly<Record<string, number>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d in amounts) out[d] = String(amounts[d]);
  return out;
}

/** The total a window must fall below for the reservation to fit (as MemoryCounterStore computes freesAt). */
function threshold(limit: CounterLimit, amounts: Readonly<Record<string, number>>): number {
  const need = limit.mode === 'reserve' ? (amounts[limit.dimension] ?? 0) : 0;
  return need > 1 || !Number.isInteger(need) ? Math.max(1e-9, limit.max - need + 1e-9) : limit.max;
}

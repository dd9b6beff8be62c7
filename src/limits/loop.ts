/**
 * Loop detection per workflow: the same call (tool + canonical arguments) too often within a window, or a short
 * cycle of calls (period 2 or 3: A,B,A,B… / A,B,C,A,B,C…) repeating too often within the window.
 */
import * as crypto from 'node:crypto';
import type { LoopCall, LoopCallRecord, LoopHistory, LoopHistoryStore } from '../stores/loop-history.js';
import { MemoryLoopHistory } from '../stores/memory/loop-history.js';
import { mapAwaitable, type Awaitable } from '../stores/types.js';

export type { LoopCall } from '../stores/loop-history.js';

export interface LoopSettings {
  /** At most this many identical calls per window; the next one trips. */
  sameCall: number;
  windowSeconds: number;
  /** A period-2/3 pattern may repeat this many times per window; the next repetition trips. Default: sameCall. */
  cycle?: number;
}

export const DEFAULT_LOOP_SETTINGS: Readonly<LoopSettings> = { sameCall: 5, windowSeconds: 60 };

export interface LoopTrip {
  kind: 'sameCall' | 'cycle';
  /** The call that tripped (the one refused). */
  call: LoopCall;
  /** Identical calls in the window including this one, or repetitions of the cycle including this one. */
  count: number;
  windowSeconds: number;
  /** The repeating calls, oldest first (cycles only). */
  pattern?: LoopCall[];
}

export interface LoopDetectorOptions {
  now?: () => number;
  /** Where histories are kept; default in memory, bounded by maxWorkflows. */
  store?: LoopHistoryStore;
  /** Workflows whose history is kept (memory store); the least recently active are forgotten first. */
  maxWorkflows?: number;
}

type CallRecord = LoopCallRecord;
type WorkflowHistory = LoopHistory;

const PERIODS = [2, 3] as const;
const SWEEP_MIN = 512;
/** Bound on remembered calls per workflow: cycles needing more (cycle > 100) are left to same-call counting. */
const MAX_RECENT = 3 * 101;

/** JSON with object keys sorted at every level, so key order and formatting never make two calls differ. */
export function canonicalJson(value: unknown): string {
  // Arguments usually come sorted already (or have one key): then JSON.stringify writes the same text natively.
  if (alreadyCanonical(value, 0)) return JSON.stringify(value);
  return sortedJson(value);
}

/**
 * Whether JSON.stringify would write `value` exactly as sortedJson does: plain objects whose keys are in sorted
 * order, arrays, and strings, finite numbers, booleans and null in them, not too deep. Anything else (undefined,
 * functions, a toJSON, a class instance) takes the slow path, which has its own rules for those.
 */
function alreadyCanonical(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (depth > 32) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!alreadyCanonical(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  if ('toJSON' in obj) return false;
  let prev: string | undefined;
  for (const k in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, k)) return false;
    if (prev !== undefined && !(prev < k)) return false;
    if (!alreadyCanonical(obj[k], depth + 1)) return false;
    prev = k;
  }
  return true;
}

function sortedJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // undefined, functions and symbols have no JSON form; treat them like JSON.stringify does inside arrays.
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => sortedJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    parts.push(`${JSON.stringify(k)}:${sortedJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** Longest tool + arguments text that is its own key; longer ones are hashed. */
export const MAX_PLAIN_KEY = 64;

/**
 * The identity of tool + arguments: the text itself while it is short (most calls: exact, and no hash to compute),
 * else its hash, which keeps memory flat however large the arguments are. The two never meet: a text key holds the
 * NUL separator, and a base64 hash has none.
 */
export function callKey(tool: string, args: unknown): string {
  const text = `${tool}\u0000${canonicalJson(args ?? {})}`;
  return text.length <= MAX_PLAIN_KEY ? text : sha256(text);
}

/** One-shot crypto.hash (Node ≥ 20.12) is about twice as fast as createHash on short inputs; fall back on older Node. */
const sha256: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'base64')
    : (text) => crypto.createHash('sha256').update(text).digest('base64');

export class LoopDetector {
  private readonly now: () => number;
  private readonly histories: LoopHistoryStore;
  private lastTool?: string;
  private lastArgs?: Record<string, unknown>;
  private lastKey?: string;

  constructor(opts: LoopDetectorOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.histories = opts.store ?? new MemoryLoopHistory({ maxWorkflows: opts.maxWorkflows });
  }

  /**
   * Check a call about to be made and, unless it trips, record it. A tripping call is not recorded:
   * it never runs, and the workflow is stopped anyway.
   */
  check(workflowId: string, tool: string, args: Record<string, unknown> | undefined, settings: LoopSettings): Awaitable<LoopTrip | undefined> {
    const key = this.keyOf(tool, args);
    return mapAwaitable(this.histories.open(workflowId), (h) => this.checkIn(workflowId, h, key, { tool, args: args ?? {} }, settings));
  }

  private checkIn(workflowId: string, h: WorkflowHistory, key: string, call: LoopCall, settings: LoopSettings): Awaitable<LoopTrip | undefined> {
    const now = this.now();
    const trip = this.tripOf(h, key, call, settings, now);
    if (trip) return trip;

    const cycle = settings.cycle ?? settings.sameCall;
    const stamps = h.byKey.get(key) ?? [];
    stamps.push(now);
    while (stamps.length > settings.sameCall) stamps.shift();
    h.byKey.set(key, stamps);
    h.recent.push({ key, call, at: now });
    const keep = Math.min(MAX_RECENT, 3 * (cycle + 1));
    // One call in, one out once the list is full: shift, which makes no array of what it removes as splice does.
    if (h.recent.length === keep + 1) h.recent.shift();
    else if (h.recent.length > keep) h.recent.splice(0, h.recent.length - keep);
    if (h.byKey.size >= h.sweepAt) this.sweep(h, now - settings.windowSeconds * 1000);
    return mapAwaitable(this.histories.changed(workflowId, h), () => undefined);
  }

  /** Whether the call would trip now, recording nothing. */
  wouldTrip(workflowId: string, tool: string, args: Record<string, unknown> | undefined, settings: LoopSettings): Awaitable<LoopTrip | undefined> {
    const key = this.keyOf(tool, args);
    return mapAwaitable(this.histories.get(workflowId), (h) => h && this.tripOf(h, key, { tool, args: args ?? {} }, settings, this.now()));
  }

  /** Take back the call `check` recorded last for this workflow (the call was refused after all). */
  forgetLast(workflowId: string, tool: string, args: Record<string, unknown> | undefined): Awaitable<void> {
    const key = this.keyOf(tool, args);
    return mapAwaitable(this.histories.get(workflowId), (h) => {
      if (!h || h.recent[h.recent.length - 1]?.key !== key) return;
      h.recent.pop();
      const stamps = h.byKey.get(key);
      stamps?.pop();
      if (stamps?.length === 0) h.byKey.delete(key);
      return this.histories.changed(workflowId, h);
    });
  }

  /** The key of the call hashed last is reused: a call is checked, then recorded, with the same arguments object. */
  private keyOf(tool: string, args: Record<string, unknown> | undefined): string {
    if (tool === this.lastTool && args === this.lastArgs && this.lastKey !== undefined) return this.lastKey;
    this.lastTool = tool;
    this.lastArgs = args;
    return (this.lastKey = callKey(tool, args ?? {}));
  }

  private tripOf(h: WorkflowHistory, key: string, call: LoopCall, settings: LoopSettings, now: number): LoopTrip | undefined {
    const since = now - settings.windowSeconds * 1000;
    const stamps = h.byKey.get(key);
    if (stamps) {
      while (stamps.length > 0 && stamps[0]! < since) stamps.shift();
      if (stamps.length >= settings.sameCall) {
        return { kind: 'sameCall', call, count: stamps.length + 1, windowSeconds: settings.windowSeconds };
      }
    }
    return this.findCycle(h.recent, key, call, settings.cycle ?? settings.sameCall, since, settings.windowSeconds);
  }

  /** Forget a workflow's history (e.g. when an admin resumes it, so it does not trip again at once). */
  reset(workflowId: string): Awaitable<void> {
    return this.histories.delete(workflowId);
  }

  /**
   * Does the current call complete `cycle + 1` repetitions of a period-p pattern (p = 2, 3) within the window?
   * Sequence index 0 is the current call, 1 the previous one, and so on.
   */
  private findCycle(
    recent: readonly CallRecord[],
    key: string,
    call: LoopCall,
    cycle: number,
    since: number,
    windowSeconds: number,
  ): LoopTrip | undefined {
    const keyAt = (i: number): string => (i === 0 ? key : recent[recent.length - i]!.key);
    for (const p of PERIODS) {
      const need = p * (cycle + 1);
      if (recent.length < need - 1) continue;
      if (recent[recent.length - (need - 1)]!.at < since) continue;
      // A pattern of one repeated call is a same-call loop, not a cycle.
      let distinct = false;
      for (let i = 1; i < p; i++) if (keyAt(i) !== key) distinct = true;
      if (!distinct) continue;
      let periodic = true;
      for (let i = 0; i + p < need && periodic; i++) periodic = keyAt(i) === keyAt(i + p);
      if (!periodic) continue;
      const pattern: LoopCall[] = [];
      for (let i = p - 1; i >= 0; i--) pattern.push(i === 0 ? call : recent[recent.length - i]!.call);
      return { kind: 'cycle', call, count: cycle + 1, windowSeconds, pattern };
    }
    return undefined;
  }

  /** Drop keys with no call left in the window; runs when the key map doubles, so its cost is amortized. */
  private sweep(h: WorkflowHistory, since: number): void {
    for (const [k, stamps] of h.byKey) if (stamps[stamps.length - 1]! < since) h.byKey.delete(k);
    h.sweepAt = Math.max(SWEEP_MIN, h.byKey.size * 2);
  }
}

/**
 * Counters and rolling windows behind one interface: atomic check-and-reserve over named dimensions for a workflow,
 * an agent and (optionally) a team, release of a reservation, and reconcile (amounts known only afterwards, tokens).
 * The rules (which limits apply, how a refusal reads) live in src/limits/; a store only counts and compares.
 */
import type { WindowName, WindowTotals } from '../limits/window.js';
import type { Awaitable } from './types.js';

export type { WindowName, WindowTotals } from '../limits/window.js';

/** Dimensions every counter store counts; a store may be built with more (e.g. costUsd) by appending names. */
export const COUNTER_DIMENSIONS: readonly string[] = ['calls', 'toolCalls', 'tokens'];

/** Who a step is counted against. */
export interface CounterKeys {
  workflowId: string;
  agentId: string;
  team?: string;
}

export type CounterSubject = 'workflow' | 'agent' | 'team';
/** `total`: since the workflow began (workflow only); the rolling windows: agent and team. */
export type CounterWindow = 'total' | WindowName;

/**
 * One limit to hold. `reserve`: refused when used + the step's amount would exceed max (units the step adds now);
 * `spent`: refused once used ≥ max (units reported after the fact). The derived dimension `ageSeconds` of a workflow
 * is the time since it began.
 */
export interface CounterLimit {
  subject: CounterSubject;
  window: CounterWindow;
  dimension: string;
  max: number;
  mode: 'reserve' | 'spent';
}

/** A step asking to be counted: what it adds to every subject, and the limits to hold, most binding first. */
export interface Reservation extends CounterKeys {
  amounts: Readonly<Record<string, number>>;
  limits: readonly CounterLimit[];
  /**
   * A model call's estimate, held until `settle` or `release`: a shared store gives it back by itself `ms` after the
   * reservation (a replica that died mid-call holds nothing for ever). `id` is unique per reservation.
   */
  hold?: ReservationHold;
}

export interface ReservationHold {
  id: string;
  ms: number;
}

/** The first limit that does not hold, with what is used now and (rolling windows) when it frees up. */
export interface LimitBreach {
  limit: CounterLimit;
  used: number;
  /** Epoch ms when the window is below max again; undefined when it never will (max ≤ 0) or for workflow totals. */
  freesAt?: number;
}

export interface WorkflowTotals {
  /** Epoch ms of the first step counted (or beginWorkflow). */
  startedAt: number;
  totals: Record<string, number>;
}

export type SubjectWindows = Record<WindowName, WindowTotals>;

export interface CounterStore {
  /** The first limit the reservation would break now, counting nothing. */
  check(r: Reservation): Awaitable<LimitBreach | undefined>;
  /** Atomically: the first limit it would break, or (none) add its amounts to every subject. */
  reserve(r: Reservation): Awaitable<LimitBreach | undefined>;
  /** Give back a reservation's amounts (a later guard refused the step). Exact for workflow totals; exact for windows in the same bucket. */
  release(r: Reservation): Awaitable<void>;
  /**
   * Replace a reservation's amounts by what was used (`used` overrides `amounts` dimension by dimension): counts the
   * difference now, or (a hold that has lapsed and was given back) all of it.
   */
  settle(r: Reservation, used: Readonly<Record<string, number>>): Awaitable<void>;
  /** Add amounts known after the fact (tokens); may overshoot a limit, which the next reservation sees. */
  add(keys: CounterKeys, amounts: Readonly<Record<string, number>>): Awaitable<void>;
  /** Start a workflow's wall clock at `startedAt` unless it started earlier. */
  beginWorkflow(workflowId: string, startedAt: number): Awaitable<void>;
  workflowTotals(workflowId: string): Awaitable<WorkflowTotals | undefined>;
  windowTotals(subject: 'agent' | 'team', name: string): Awaitable<SubjectWindows | undefined>;
  /** Persist what is written behind (no-op for stores that write through). */
  flush(): Awaitable<void>;
  close(): Awaitable<void>;
}

/** Rolling-window counters: fixed sub-buckets give a sliding approximation with O(1) amortized updates. */

export type WindowName = 'perMinute' | 'perHour' | 'perDay' | 'perMonth';
export type WindowMetric = 'calls' | 'toolCalls' | 'tokens';

export const WINDOW_NAMES: readonly WindowName[] = ['perMinute', 'perHour', 'perDay', 'perMonth'];
export const WINDOW_METRICS: readonly WindowMetric[] = ['calls', 'toolCalls', 'tokens'];

export const WINDOW_SPAN_MS: Readonly<Record<WindowName, number>> = {
  perMinute: 60_000,
  perHour: 3_600_000,
  perDay: 86_400_000,
  /** A rolling 30 days. */
  perMonth: 30 * 86_400_000,
};

/** Index of each dimension inside a bucket, per dimension list; plain numbers keep the hot path free of lookups. */
const indexCache = new WeakMap<readonly string[], ReadonlyMap<string, number>>();
function indexOf(dims: readonly string[]): ReadonlyMap<string, number> {
  let m = indexCache.get(dims);
  if (!m) indexCache.set(dims, (m = new Map(dims.map((d, i) => [d, i]))));
  return m;
}

/** What is persisted for one window: enough to rebuild it exactly after a restart. */
export interface WindowSnapshot {
  bucketMs: number;
  buckets: number;
  /** Absolute bucket index (floor(time / bucketMs)) of the newest slot. */
  head: number;
  /** buckets × dims counts, slot-major: one count per dimension per slot. */
  counts: number[];
  /** The dimensions of each slot, in order; absent in older snapshots, which hold [calls, toolCalls, tokens]. */
  dims?: string[];
}

/** Totals per counted dimension (calls, toolCalls, tokens, and any dimension a store is configured with). */
export type WindowTotals = Record<WindowMetric, number> & Record<string, number>;

/**
 * Sum of the last `buckets` sub-buckets, the newest being partial: covers between (n-1)/n and all of the span,
 * so a counted event leaves the window between span-bucketMs and span after it happened.
 */
export class RollingWindow {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly dims: readonly string[];
  private head: number;
  private readonly counts: Float64Array;
  private readonly totals: Float64Array;
  private readonly index: ReadonlyMap<string, number>;

  constructor(spanMs: number, buckets = 60, now = 0, snapshot?: WindowSnapshot, dims: readonly string[] = WINDOW_METRICS) {
    const M = dims.length;
    this.buckets = buckets;
    this.dims = dims;
    this.index = indexOf(dims);
    this.bucketMs = Math.max(1, Math.floor(spanMs / buckets));
    this.counts = new Float64Array(buckets * M);
    this.totals = new Float64Array(M);
    this.head = Math.floor(now / this.bucketMs);
    const saved = snapshot?.dims ?? WINDOW_METRICS;
    const usable =
      snapshot && snapshot.bucketMs === this.bucketMs && snapshot.buckets === buckets && snapshot.counts.length === buckets * saved.length;
    if (usable) {
      this.head = snapshot.head;
      // Restored by dimension name, so adding a dimension keeps the counts of the others.
      for (let d = 0; d < saved.length; d++) {
        const m = this.index.get(saved[d]!);
        if (m === undefined) continue;
        for (let b = 0; b < buckets; b++) {
          const v = Number(snapshot.counts[b * saved.length + d]) || 0;
          this.counts[b * M + m] = v;
          this.totals[m] += v;
        }
      }
      this.advance(now);
    }
  }

  /** Position of a dimension in this window's slots; undefined when it is not counted here. */
  dimIndex(dim: string): number | undefined {
    return this.index.get(dim);
  }

  /** Drop the buckets that slid out of the window since the last call; amortized O(1). */
  advance(now: number): void {
    const idx = Math.floor(now / this.bucketMs);
    if (idx <= this.head) return;
    if (idx - this.head >= this.buckets) {
      this.counts.fill(0);
      this.totals.fill(0);
    } else {
      const M = this.totals.length;
      for (let b = this.head + 1; b <= idx; b++) {
        const base = (b % this.buckets) * M;
        for (let m = 0; m < M; m++) {
          this.totals[m] -= this.counts[base + m];
          this.counts[base + m] = 0;
        }
      }
    }
    this.head = idx;
  }

  /** Total of one dimension (0 when not counted here); call advance(now) first. */
  total(metric: string): number {
    const m = this.index.get(metric);
    return m === undefined ? 0 : this.totals[m]!;
  }

  /** Total by dimension position (see dimIndex); call advance(now) first. */
  totalAt(m: number): number {
    return this.totals[m]!;
  }

  /** Add to the newest bucket; call advance(now) first. */
  add(metric: string, n: number): void {
    const m = this.index.get(metric);
    if (m !== undefined) this.addAt(m, n);
  }

  addAt(m: number, n: number): void {
    this.counts[(this.head % this.buckets) * this.totals.length + m] += n;
    this.totals[m] += n;
  }

  totalsAt(now: number): WindowTotals {
    this.advance(now);
    const out: Record<string, number> = {};
    for (let m = 0; m < this.dims.length; m++) out[this.dims[m]!] = this.totals[m]!;
    return out as WindowTotals;
  }

  /**
   * Earliest time the total of `metric` is below `max` again, as buckets slide out oldest first; `now` if it
   * already is, undefined if it never will (max ≤ 0). Call advance(now) first.
   */
  freesAt(metric: string, max: number, now: number): number | undefined {
    if (!(max > 0)) return undefined;
    const m = this.index.get(metric);
    if (m === undefined) return now;
    const M = this.totals.length;
    let left = this.totals[m]!;
    if (left < max) return now;
    for (let b = this.head - this.buckets + 1; b <= this.head; b++) {
      if (b < 0) continue;
      left -= this.counts[(b % this.buckets) * M + m]!;
      if (left < max) return (b + this.buckets) * this.bucketMs;
    }
    return (this.head + this.buckets) * this.bucketMs;
  }

  snapshot(): WindowSnapshot {
    // A plain loop: Array.from walks a typed array through its iterator, one result object per count, and a snapshot
    // of every window of every active subject is taken at each write-behind flush.
    const counts = new Array<number>(this.counts.length);
    for (let i = 0; i < counts.length; i++) counts[i] = this.counts[i]!;
    return { bucketMs: this.bucketMs, buckets: this.buckets, head: this.head, counts, dims: [...this.dims] };
  }
}

/** The three windows of one subject (an agent or a team). */
export class SubjectWindows {
  readonly perMinute: RollingWindow;
  readonly perHour: RollingWindow;
  readonly perDay: RollingWindow;
  readonly perMonth: RollingWindow;
  /** Changed since the last write-behind flush. */
  dirty = false;

  constructor(buckets: number, now: number, snapshots: Partial<Record<WindowName, WindowSnapshot>> = {}, dims: readonly string[] = WINDOW_METRICS) {
    this.perMinute = new RollingWindow(WINDOW_SPAN_MS.perMinute, buckets, now, snapshots.perMinute, dims);
    this.perHour = new RollingWindow(WINDOW_SPAN_MS.perHour, buckets, now, snapshots.perHour, dims);
    this.perDay = new RollingWindow(WINDOW_SPAN_MS.perDay, buckets, now, snapshots.perDay, dims);
    this.perMonth = new RollingWindow(WINDOW_SPAN_MS.perMonth, buckets, now, snapshots.perMonth, dims);
  }

  advance(now: number): void {
    this.perMinute.advance(now);
    this.perHour.advance(now);
    this.perDay.advance(now);
    this.perMonth.advance(now);
  }

  add(metric: string, n: number): void {
    const m = this.perMinute.dimIndex(metric);
    if (m !== undefined) this.addAt(m, n);
  }

  addAt(m: number, n: number): void {
    this.perMinute.addAt(m, n);
    this.perHour.addAt(m, n);
    this.perDay.addAt(m, n);
    this.perMonth.addAt(m, n);
    this.dirty = true;
  }
}

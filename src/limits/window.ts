/** Rolling-window counters: fixed sub-buckets give a sliding approximation with O(1) amortized updates. */

export type WindowName = 'perMinute' | 'perHour' | 'perDay' | 'perMonth';
export type WindowMetric = 'calls' | 'toolCalls' | 'tokens' | 'costUsd';

export const WINDOW_NAMES: readonly WindowName[] = ['perMinute', 'perHour', 'perDay', 'perMonth'];
export const WINDOW_METRICS: readonly WindowMetric[] = ['calls', 'toolCalls', 'tokens', 'costUsd'];

export const WINDOW_SPAN_MS: Readonly<Record<WindowName, number>> = {
  perMinute: 60_000,
  perHour: 3_600_000,
  perDay: 86_400_000,
  /** A rolling 30 days. */
  perMonth: 30 * 86_400_000,
};

/** Index of each metric inside a bucket; plain numbers keep the hot path free of object lookups. */
const METRIC_INDEX: Readonly<Record<WindowMetric, number>> = { calls: 0, toolCalls: 1, tokens: 2, costUsd: 3 };
const METRICS = 4;
/** Snapshots written before costUsd was counted hold three metrics per slot. */
const OLD_METRICS = 3;

/** What is persisted for one window: enough to rebuild it exactly after a restart. */
export interface WindowSnapshot {
  bucketMs: number;
  buckets: number;
  /** Absolute bucket index (floor(time / bucketMs)) of the newest slot. */
  head: number;
  /** buckets × 4 counts, slot-major: [calls, toolCalls, tokens, costUsd] per slot (3 in older snapshots). */
  counts: number[];
}

export type WindowTotals = Record<WindowMetric, number>;

/**
 * Sum of the last `buckets` sub-buckets, the newest being partial: covers between (n-1)/n and all of the span,
 * so a counted event leaves the window between span-bucketMs and span after it happened.
 */
export class RollingWindow {
  readonly bucketMs: number;
  readonly buckets: number;
  private head: number;
  private readonly counts: Float64Array;
  private readonly totals = new Float64Array(METRICS);

  constructor(spanMs: number, buckets = 60, now = 0, snapshot?: WindowSnapshot) {
    this.buckets = buckets;
    this.bucketMs = Math.max(1, Math.floor(spanMs / buckets));
    this.counts = new Float64Array(buckets * METRICS);
    this.head = Math.floor(now / this.bucketMs);
    const per = snapshot ? snapshot.counts.length / buckets : 0;
    const usable = snapshot && snapshot.bucketMs === this.bucketMs && snapshot.buckets === buckets && (per === METRICS || per === OLD_METRICS);
    if (usable) {
      this.head = snapshot.head;
      for (let slot = 0; slot < buckets; slot++) {
        for (let m = 0; m < per; m++) {
          const v = Number(snapshot.counts[slot * per + m]) || 0;
          this.counts[slot * METRICS + m] = v;
          this.totals[m] += v;
        }
      }
      this.advance(now);
    }
  }

  /** Drop the buckets that slid out of the window since the last call; amortized O(1). */
  advance(now: number): void {
    const idx = Math.floor(now / this.bucketMs);
    if (idx <= this.head) return;
    if (idx - this.head >= this.buckets) {
      this.counts.fill(0);
      this.totals.fill(0);
    } else {
      for (let b = this.head + 1; b <= idx; b++) {
        const base = (b % this.buckets) * METRICS;
        for (let m = 0; m < METRICS; m++) {
          this.totals[m] -= this.counts[base + m];
          this.counts[base + m] = 0;
        }
      }
    }
    this.head = idx;
  }

  /** Total of one metric; call advance(now) first. */
  total(metric: WindowMetric): number {
    return this.totals[METRIC_INDEX[metric]];
  }

  /** Add to the newest bucket; call advance(now) first. */
  add(metric: WindowMetric, n: number): void {
    const m = METRIC_INDEX[metric];
    this.counts[(this.head % this.buckets) * METRICS + m] += n;
    this.totals[m] += n;
  }

  /**
   * Add to the bucket that held time `at` (a reservation being reconciled), so the correction leaves the window with
   * what it corrects; a bucket that already slid out takes nothing. Call advance(now) first.
   */
  addAt(metric: WindowMetric, n: number, at: number): void {
    const idx = Math.floor(at / this.bucketMs);
    if (idx > this.head || idx <= this.head - this.buckets) return;
    const m = METRIC_INDEX[metric];
    this.counts[(idx % this.buckets) * METRICS + m] += n;
    this.totals[m] += n;
  }

  totalsAt(now: number): WindowTotals {
    this.advance(now);
    return { calls: this.totals[0], toolCalls: this.totals[1], tokens: this.totals[2], costUsd: this.totals[3] };
  }

  /**
   * Earliest time the total of `metric` is below `max` again, as buckets slide out oldest first; `now` if it
   * already is, undefined if it never will (max ≤ 0). Call advance(now) first.
   */
  freesAt(metric: WindowMetric, max: number, now: number): number | undefined {
    if (!(max > 0)) return undefined;
    const m = METRIC_INDEX[metric];
    let left = this.totals[m];
    if (left < max) return now;
    for (let b = this.head - this.buckets + 1; b <= this.head; b++) {
      if (b < 0) continue;
      left -= this.counts[(b % this.buckets) * METRICS + m];
      if (left < max) return (b + this.buckets) * this.bucketMs;
    }
    return (this.head + this.buckets) * this.bucketMs;
  }

  snapshot(): WindowSnapshot {
    return { bucketMs: this.bucketMs, buckets: this.buckets, head: this.head, counts: Array.from(this.counts) };
  }
}

/** The four windows of one subject (an agent or a team). */
export class SubjectWindows {
  readonly perMinute: RollingWindow;
  readonly perHour: RollingWindow;
  readonly perDay: RollingWindow;
  readonly perMonth: RollingWindow;
  /** Changed since the last write-behind flush. */
  dirty = false;

  constructor(buckets: number, now: number, snapshots: Partial<Record<WindowName, WindowSnapshot>> = {}) {
    this.perMinute = new RollingWindow(WINDOW_SPAN_MS.perMinute, buckets, now, snapshots.perMinute);
    this.perHour = new RollingWindow(WINDOW_SPAN_MS.perHour, buckets, now, snapshots.perHour);
    this.perDay = new RollingWindow(WINDOW_SPAN_MS.perDay, buckets, now, snapshots.perDay);
    this.perMonth = new RollingWindow(WINDOW_SPAN_MS.perMonth, buckets, now, snapshots.perMonth);
  }

  advance(now: number): void {
    this.perMinute.advance(now);
    this.perHour.advance(now);
    this.perDay.advance(now);
    this.perMonth.advance(now);
  }

  add(metric: WindowMetric, n: number): void {
    this.perMinute.add(metric, n);
    this.perHour.add(metric, n);
    this.perDay.add(metric, n);
    this.perMonth.add(metric, n);
    this.dirty = true;
  }

  addAt(metric: WindowMetric, n: number, at: number): void {
    this.perMinute.addAt(metric, n, at);
    this.perHour.addAt(metric, n, at);
    this.perDay.addAt(metric, n, at);
    this.perMonth.addAt(metric, n, at);
    this.dirty = true;
  }
}

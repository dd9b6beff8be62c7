/**
 * Per-step metrics counted in plain numbers and handed to prom-client only when /metrics is scraped. prom-client
 * hashes the label set on every inc() and observe(), even through a cached child; a step costs one Map lookup here.
 */
import type { Counter, Registry } from 'prom-client';

/** A counter's label values and the increments not yet folded into the prom-client counter. */
interface PendingCount {
  labels: readonly string[];
  n: number;
}

type Level = Map<string, Level | PendingCount>;

/**
 * Counts for a prom-client Counter, one Map level per label value (no key string is built per step); folded into the
 * counter by its collect() hook.
 */
export class CounterTally<L extends string> {
  private readonly root: Level = new Map();
  private readonly all: PendingCount[] = [];

  constructor(private readonly counter: Counter<L>) {}

  /** Add one for these label values, in the counter's label order. */
  inc(...labels: string[]): void {
    let level = this.root;
    const last = labels.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(labels[i]!) as Level | undefined;
      if (!next) level.set(labels[i]!, (next = new Map()));
      level = next;
    }
    const p = level.get(labels[last]!) as PendingCount | undefined;
    if (p) p.n++;
    else {
      const created = { labels, n: 1 };
      level.set(labels[last]!, created);
      this.all.push(created);
    }
  }

  /** Fold what was counted since the last scrape into the counter (its collect() hook). */
  fold(): void {
    for (const p of this.all) {
      if (p.n === 0) continue;
      this.counter.labels(...p.labels).inc(p.n);
      p.n = 0;
    }
  }
}

interface Series {
  /** Observations per bucket (not cumulative), one slot per upper bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A value as prom-client's registry renders it (the shape its own Histogram hands over). */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  /** No exemplars: null on buckets, undefined on sum and count, as prom-client's own values say it. */
  exemplar: null | undefined;
}

/**
 * A histogram with one label, registered in a prom-client Registry like prom-client's own Histogram and rendered in the
 * same text (`_bucket` with `le`, `_sum`, `_count`), whose observe() costs a Map lookup and a bucket search.
 */
export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();
  private readonly bounds: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.bounds = [...buckets].sort((a, b) => a - b);
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  observe(labelValue: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let s = this.series.get(labelValue);
    if (!s) this.series.set(labelValue, (s = { counts: new Float64Array(this.bounds.length), sum: 0, count: 0 }));
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  remove(labelValue: string): void {
    this.series.delete(labelValue);
  }

  reset(): void {
    this.series.clear();
  }

  /** For the text format: `le` as the value's own label, the series label shared (prom-client's order). */
  getForPromString(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [labelValue, s] of this.series) {
      const shared = { [this.labelName]: labelValue };
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: shared, value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: s.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: shared, value: s.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** For JSON: every label on the value itself. */
  get(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const data = this.getForPromString();
    data.values = data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }
}

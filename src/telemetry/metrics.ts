/** Prometheus metrics for /metrics: calls, latency, refusals, upstream health, sessions, workflows, audit queue. */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Step, StepOutcome } from '../gateway/types.js';
import { ModelMetrics } from './model-metrics.js';
import { CounterTally, TallyHistogram } from './tally.js';

/** Latency buckets in seconds: a thin gateway hop is sub-millisecond, a slow tool takes a minute. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Label used for steps that never reached a server (e.g. refused unknown names), so clients cannot blow up cardinality. */
const UNROUTED = '(unrouted)';
/** Label for tool and prompt names that could not be checked against the upstream's list. */
const UNVERIFIED = '(unverified)';

type CallLabels = 'server' | 'tool' | 'outcome';

export interface MetricsOptions {
  /** Collect Node process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
  /** Prefix for the process metrics (default none: the usual process_* and nodejs_* names dashboards expect). */
  processPrefix?: string;
}

export class Metrics {
  readonly registry = new Registry();
  /** Steps by server, tool and outcome: counted here, folded into switchyard_calls_total at scrape time. */
  private readonly calls: CounterTally<CallLabels>;
  private readonly duration: TallyHistogram;
  private readonly refusals: Counter<'reason'>;
  private readonly upstreamUp: Gauge<'server'>;
  private readonly sessions: Gauge;
  private activeWorkflows: () => number = () => 0;
  private auditQueueDepth: () => number = () => 0;
  private auditWriter: () => { failedFlushes: number; dropped: number } = () => ({ failedFlushes: 0, dropped: 0 });
  private readonly models: ModelMetrics;

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    const calls: CounterTally<CallLabels> = new CounterTally(
      new Counter({
        name: 'switchyard_calls_total',
        help: 'Steps (tool calls, resource reads, prompt gets, A2A messages, model calls) by server, tool and outcome.',
        labelNames: ['server', 'tool', 'outcome'],
        registers,
        collect: () => calls.fold(),
      }),
    );
    this.calls = calls;
    this.duration = new TallyHistogram('switchyard_call_duration_seconds', 'Step latency through the gateway, by server.', 'server', DURATION_BUCKETS, this.registry);
    this.refusals = new Counter({
      name: 'switchyard_refusals_total',
      help: 'Refused steps by machine reason (SPEC section 7).',
      labelNames: ['reason'],
      registers,
    });
    this.upstreamUp = new Gauge({
      name: 'switchyard_upstream_up',
      help: '1 when the upstream server is connected and healthy, 0 otherwise.',
      labelNames: ['server'],
      registers,
    });
    this.sessions = new Gauge({ name: 'switchyard_sessions_active', help: 'Open downstream sessions.', registers });
    const metrics = this;
    new Gauge({
      name: 'switchyard_workflows_active',
      help: 'Workflows in state active.',
      registers,
      collect() {
        this.set(metrics.activeWorkflows());
      },
    });
    new Gauge({
      name: 'switchyard_audit_queue_depth',
      help: 'Audit records waiting for the batched writer.',
      registers,
      collect() {
        this.set(metrics.auditQueueDepth());
      },
    });
    new Counter({
      name: 'switchyard_audit_write_failures_total',
      help: 'Audit flush transactions that failed (their records are retried; /readyz is red meanwhile).',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.auditWriter().failedFlushes);
      },
    });
    new Counter({
      name: 'switchyard_audit_records_dropped_total',
      help: 'Audit records that were never written (queue overflow, or still unwritten at shutdown).',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.auditWriter().dropped);
      },
    });
    this.models = new ModelMetrics(this.registry);
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: opts.processPrefix ?? '' });
  }

  /** Count and time one finished step; cheap enough for every call (plain tallies, handed to prom-client when scraped). */
  observeStep(step: Step, outcome: StepOutcome): void {
    const server = step.server ?? UNROUTED;
    // Resource URIs are unbounded, so resource reads share one tool label per server; a tool or prompt name the
    // upstream's list did not confirm (it could not be listed) is the client's own string and gets a fixed label.
    const tool =
      step.server === undefined
        ? UNROUTED
        : step.kind === 'resources/read'
          ? 'resources/read'
          : step.unverified
            ? UNVERIFIED
            : step.target;
    this.calls.inc(server, tool, outcome.outcome);
    this.duration.observe(server, outcome.durationMs / 1000);
    if (outcome.outcome === 'refused') this.refusals.labels(outcome.reason ?? 'unknown').inc();
    if (outcome.model) this.models.observe(step, outcome);
  }

  /** Count a refusal that never became a step (e.g. unauthenticated requests). */
  countRefusal(reason: string): void {
    this.refusals.labels(reason).inc();
  }

  setUpstreamUp(server: string, up: boolean): void {
    this.upstreamUp.labels(server).set(up ? 1 : 0);
  }

  /** Forget a server removed from servers.d, so its series stop being exported. */
  removeUpstream(server: string): void {
    this.upstreamUp.remove(server);
  }

  setSessions(n: number): void {
    this.sessions.set(n);
  }

  /** Read at scrape time, e.g. () => workflows.countByState().active. */
  trackActiveWorkflows(read: () => number): void {
    this.activeWorkflows = read;
  }

  /** Read at scrape time, e.g. () => store.queueDepth. */
  trackAuditQueue(read: () => number): void {
    this.auditQueueDepth = read;
  }

  /** Read at scrape time, e.g. () => store.getStats(). */
  trackAuditWriter(read: () => { failedFlushes: number; dropped: number }): void {
    this.auditWriter = read;
  }

  /** Content-Type header for render()'s body. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

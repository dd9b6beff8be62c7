/**
 * What every audit store does before and after its own write: the queue of finished steps, record() in batched or
 * strict mode, list-call counters, the flush timers, failure and retry bookkeeping, stats, health and the shutdown
 * tally. A store supplies only how a taken batch reaches its database.
 */
import { pendingOf, type PendingRecord } from '../audit/rows.js';
import type { Step, StepOutcome } from '../gateway/types.js';
import type { Logger } from '../telemetry/logger.js';
import type { AuditStats, WriterHealth } from './audit.js';

export interface AuditQueueOptions {
  /** 'strict': record() resolves only once the row is committed. Default 'batched'. */
  durability?: 'batched' | 'strict';
  /** Longest a batched record waits before its transaction (default 100 ms). */
  flushMs?: number;
  /** Queue length that triggers a flush without waiting for the timer (default 500). */
  maxBatch?: number;
  /** How often list-call counters reach the database (default 1000 ms). */
  counterFlushMs?: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** What every audit store is opened with, besides its own connection settings. */
export interface AuditLogOptions extends AuditQueueOptions {
  /** Argument keys whose words spell any of these (see redact.ts) are stored as "[REDACTED]". */
  redact?: readonly string[];
  /** Stored argument JSON longer than this is replaced by a truncated preview (default 64 KiB). */
  maxArgsLength?: number;
  /** Prune records older than this many days, shortly after start and every 6 hours. */
  retentionDays?: number;
  /** The audit key: records are HMAC-chained and the head is MACed with it; never stored in the database. */
  hmacKey?: Buffer;
}

/** What the store does with the queue; `overBacklog` may flush at once after a batched record (returns true if so). */
export interface AuditQueueWriter {
  startFlush(): void;
  overBacklog?(): boolean;
}

/** One flush's share of the queue: records and list-call counters taken out together. */
export interface TakenWork {
  batch: PendingRecord[];
  counters: Map<string, number>;
}

/** Records beyond this many waiting after failed flushes are dropped, oldest first. */
const MAX_QUEUE = 100_000;
const RETENTION_EVERY_MS = 6 * 60 * 60 * 1000;

export class AuditQueue {
  readonly durability: 'batched' | 'strict';
  readonly flushMs: number;
  readonly maxBatch: number;
  private readonly counterFlushMs: number;
  private readonly logger: Pick<Logger, 'warn' | 'error'> | undefined;
  private queue: PendingRecord[] = [];
  private counters = new Map<string, number>();
  /** A flush was asked for with nothing queued (a store's own work waits, e.g. flush hooks). */
  wanted = false;
  failure: { error: string; since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  private readonly retentionTimers: NodeJS.Timeout[] = [];
  closed = false;
  private readonly stats: AuditStats = { queued: 0, written: 0, dropped: 0, flushes: 0, failedFlushes: 0 };

  constructor(
    opts: AuditQueueOptions,
    private readonly writer: AuditQueueWriter,
  ) {
    this.durability = opts.durability ?? 'batched';
    this.flushMs = Math.max(0, opts.flushMs ?? 100);
    this.maxBatch = Math.max(1, opts.maxBatch ?? 500);
    this.counterFlushMs = opts.counterFlushMs ?? 1000;
    this.logger = opts.logger;
  }

  /** Records waiting in the queue (not counting any the store has in flight). */
  get length(): number {
    return this.queue.length;
  }

  /** Nothing to write: no records, no counters, no flush asked for. */
  get idle(): boolean {
    return this.queue.length === 0 && this.counters.size === 0 && !this.wanted;
  }

  /** Prune every 6 hours, first shortly after start (never inside a constructor, so startup is not slowed by a large delete). */
  startRetention(prune: () => unknown): void {
    const failed = (err: unknown): void => this.logger?.error({ err }, 'audit retention prune failed; it is retried in 6 hours');
    const run = (): void => {
      try {
        const done = prune();
        if (done instanceof Promise) done.catch(failed);
      } catch (err) {
        failed(err);
      }
    };
    this.retentionTimers.push(setTimeout(run, 1000).unref(), setInterval(run, RETENTION_EVERY_MS).unref());
  }

  getStats(inFlight = 0): AuditStats {
    return { ...this.stats, queued: this.queue.length + inFlight };
  }

  /** For /readyz: red while flushes fail, with the error and how many records wait. */
  health(inFlight = 0): WriterHealth {
    if (!this.failure) return { ok: true };
    return { ok: false, error: this.failure.error, since: new Date(this.failure.since).toISOString(), queued: this.queue.length + inFlight };
  }

  /** Queue one finished step (O(1)); in strict mode the promise resolves once it is committed and rejects if the write fails. */
  record(step: Step, outcome: StepOutcome): void | Promise<void> {
    const pending = pendingOf(step, outcome);
    if (this.closed) {
      this.stats.dropped++;
      this.logger?.warn({ workflowId: step.workflowId, step: step.stepNo }, 'audit record after close was dropped');
      if (this.durability === 'strict') return Promise.reject(new Error('audit store is closed; the step was not recorded'));
      return;
    }
    if (this.durability === 'strict') {
      return new Promise<void>((resolve, reject) => {
        pending.settle = { resolve, reject };
        this.queue.push(pending);
        this.schedule(0);
      });
    }
    this.queue.push(pending);
    if (this.writer.overBacklog?.()) return;
    this.schedule(this.queue.length >= this.maxBatch ? 0 : this.flushMs);
  }

  /** Count a list call or ping without storing it one by one. */
  countListCall(agent: string, method: string): void {
    const key = `${agent}\n${method}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
    this.schedule(this.counterFlushMs);
  }

  /** Ask for a flush soon even with no records queued. */
  request(): void {
    this.wanted = true;
    this.schedule(this.flushMs);
  }

  /** Start a flush after `delayMs` (0: on the next turn), unless one is due sooner. */
  schedule(delayMs: number): void {
    if (this.immediate) return;
    if (delayMs === 0) {
      this.clearTimer();
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.writer.startFlush();
      });
      return;
    }
    const due = Date.now() + delayMs;
    if (this.timer && this.timerDue <= due) return;
    this.clearTimer();
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.writer.startFlush();
    }, delayMs);
    // Pending records must not keep a finished process alive; close() flushes them on shutdown.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  private clearTimers(): void {
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  /** Take up to `most` records and every counter for one flush, cancelling the timers that would have started it. */
  take(most = Infinity): TakenWork {
    this.clearTimers();
    const batch = this.queue.length > most ? this.queue.slice(0, most) : this.queue;
    this.queue = this.queue.length > most ? this.queue.slice(most) : [];
    const counters = this.counters;
    this.counters = new Map();
    this.wanted = false;
    return { batch, counters };
  }

  /** The batch is committed: the writer is healthy again and strict records resolve. */
  written(batch: PendingRecord[]): void {
    this.failure = undefined;
    this.stats.written += batch.length;
    this.stats.flushes++;
    for (const p of batch) p.settle?.resolve();
  }

  /**
   * The batch failed: strict records reject, the rest go back to the front of the queue (the oldest dropped beyond
   * MAX_QUEUE), counters are merged back, `advice` is logged once and a retry is scheduled with back-off.
   * `rerun` marks a flush as wanted even with nothing queued (the store's own work in the batch must be redone).
   */
  failed(work: TakenWork, err: Error, advice: string, rerun = false): void {
    const { batch, counters } = work;
    this.stats.failedFlushes++;
    this.failure ??= { error: err.message, since: Date.now() };
    this.failure.error = err.message;
    for (const [key, count] of counters) this.counters.set(key, (this.counters.get(key) ?? 0) + count);
    for (const p of batch) p.settle?.reject(new Error(`audit write failed: ${err.message}`));
    const retry = batch.filter((p) => !p.settle);
    const room = MAX_QUEUE - this.queue.length;
    const kept = retry.length > room ? retry.slice(retry.length - Math.max(0, room)) : retry;
    this.stats.dropped += retry.length - kept.length;
    this.queue = kept.concat(this.queue);
    this.logger?.error({ err, retrying: kept.length, dropped: retry.length - kept.length }, advice);
    if (rerun) this.wanted = true;
    if (!this.closed && !this.idle) this.schedule(Math.max(this.flushMs, 1000));
  }

  /**
   * After the store's last flushes: refuse further records, drop what is still queued with one error line built by
   * `lostLine(count, error)`, and stop every timer. Returns how many records were lost.
   */
  shut(lostLine: (lost: number, error: string | undefined) => string): number {
    this.closed = true;
    const lost = this.queue.length;
    if (lost > 0) {
      this.stats.dropped += lost;
      this.queue = [];
      this.logger?.error({ unwritten: lost, err: this.failure?.error }, lostLine(lost, this.failure?.error));
    }
    this.clearTimers();
    for (const t of this.retentionTimers) clearTimeout(t);
    this.retentionTimers.length = 0;
    return lost;
  }
}

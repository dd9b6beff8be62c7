/** The audit writer: steps are queued on the response path and written, redacted and hash-chained, in batches. */
import type { VerifyResult } from '../../../audit/chain.js';
import type { AuditFilter, AuditPage, AuditRecord } from '../../../audit/query.js';
import { compileRedactor, DEFAULT_REDACT_PATTERNS } from '../../../audit/redact.js';
import { pendingOf, type PendingRecord, type RowFormat } from '../../../audit/rows.js';
import type { Step, StepOutcome, StepSink } from '../../../gateway/types.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { AuditLog, AuditStats, CallCount, PruneResult, RefusalCount, WriterHealth } from '../../audit.js';

export type { AuditStats, CallCount, PruneResult, WriterHealth } from '../../audit.js';
import type { Db } from '../db.js';
import '../model-columns.js';
import { HeadStore } from './head.js';
import { exportAuditRows, queryAuditPage } from './query.js';
import { pruneBefore } from './retention.js';
import { chainTip, verifyChain } from './verify.js';
import type { SqlStatement } from './batch.js';
import { InlineWriter, ThreadWriter, type AuditWriter } from './writers.js';

export interface AuditStoreOptions {
  /** 'strict': record() resolves only once the row is committed. Default 'batched'. */
  durability?: 'batched' | 'strict';
  /** Longest a batched record waits before its transaction (default 100 ms). */
  flushMs?: number;
  /** Queue length that triggers a flush without waiting for the timer (default 500). */
  maxBatch?: number;
  /** Argument keys whose words spell any of these (see redact.ts) are stored as "[REDACTED]". */
  redact?: readonly string[];
  /** Stored argument JSON longer than this is replaced by a truncated preview (default 64 KiB). */
  maxArgsLength?: number;
  /** How often list-call counters reach the database (default 1000 ms). */
  counterFlushMs?: number;
  /** Prune records older than this many days, at start and every 6 hours. */
  retentionDays?: number;
  /** The audit key (see head.ts): records are HMAC-chained and the head is MACed with it. */
  hmacKey?: Buffer;
  logger?: Pick<Logger, 'warn' | 'error'>;
  /**
   * 'thread' (default for a database file): flush transactions run on a writer thread with its own connection.
   * 'inline': on this connection, on the event loop (always so for an in-memory database).
   */
  writer?: 'thread' | 'inline';
}

/** What a flush hook adds: statements run inside the flush transaction after the batch's rows, and a callback for after it committed. */
export interface FlushWork {
  statements: SqlStatement[];
  committed?: () => void;
}

/** Asked at the start of each flush (e.g. for workflow step counters); its statements ride in that flush's transaction. */
export type FlushHook = () => FlushWork | undefined;

const MAX_QUEUE = 100_000;
/** Batches queued or in flight beyond which record() waits for the writer (see record). */
const BACKLOG_BATCHES = 4;
const RETENTION_EVERY_MS = 6 * 60 * 60 * 1000;


export class AuditStore implements StepSink, AuditLog {
  readonly durability: 'batched' | 'strict';
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly counterFlushMs: number;
  private readonly format: RowFormat;
  private readonly head: HeadStore;
  private readonly logger: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly writer: AuditWriter;
  private readonly hooks: FlushHook[] = [];
  private queue: PendingRecord[] = [];
  /** Records of the flush the writer has not answered yet. */
  private writing = 0;
  private inFlight = false;
  /** A flush was asked for while one was in flight: start the next as soon as it is answered. */
  private again = false;
  private counters = new Map<string, number>();
  private hooksPending = false;
  private failure: { error: string; since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  private readonly retentionTimers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly stats: AuditStats = { queued: 0, written: 0, dropped: 0, flushes: 0, failedFlushes: 0 };

  constructor(
    readonly db: Db,
    opts: AuditStoreOptions = {},
  ) {
    this.durability = opts.durability ?? 'batched';
    this.flushMs = Math.max(0, opts.flushMs ?? 100);
    this.maxBatch = Math.max(1, opts.maxBatch ?? 500);
    this.counterFlushMs = opts.counterFlushMs ?? 1000;
    this.format = { redactor: compileRedactor(opts.redact ?? DEFAULT_REDACT_PATTERNS), maxArgsLength: opts.maxArgsLength ?? 64 * 1024, key: opts.hmacKey };
    this.logger = opts.logger;
    this.head = new HeadStore(db, opts.hmacKey);
    const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM audit');
    db.transaction(() => this.head.init(() => chainTip(db), () => count.get()?.n ?? 0)).immediate();
    const threaded = (opts.writer ?? 'thread') === 'thread' && !db.memory && !db.readonly && ThreadWriter.available();
    this.writer = threaded
      ? new ThreadWriter(db, { format: this.format, redact: opts.redact ?? DEFAULT_REDACT_PATTERNS, logger: opts.logger })
      : new InlineWriter(db, this.format);
    if (opts.retentionDays !== undefined && opts.retentionDays > 0) this.startRetention(opts.retentionDays);
  }

  private startRetention(days: number): void {
    const run = (): void => {
      try {
        this.prune(days);
      } catch (err) {
        this.logger?.error({ err }, 'audit retention prune failed; it is retried in 6 hours');
      }
    };
    // First run shortly after start, not inside the constructor, so startup is never slowed by a large delete.
    this.retentionTimers.push(setTimeout(run, 1000).unref(), setInterval(run, RETENTION_EVERY_MS).unref());
  }

  /** Records waiting for the writer (for the audit queue depth gauge). */
  get queueDepth(): number {
    this.writer.poll();
    return this.queue.length + this.writing;
  }

  getStats(): AuditStats {
    this.writer.poll();
    return { ...this.stats, queued: this.queue.length + this.writing };
  }

  /** For /readyz: red while flushes fail, with the error and how many records wait. */
  health(): WriterHealth {
    this.writer.poll();
    if (!this.failure) return { ok: true };
    return { ok: false, error: this.failure.error, since: new Date(this.failure.since).toISOString(), queued: this.queue.length + this.writing };
  }

  /**
   * Queue one finished step. O(1): copies a few fields and schedules the writer. In strict mode the returned promise
   * resolves once the row is committed (concurrent records share one transaction) and rejects if the write fails.
   */
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
    // A writer thread that fell behind is waited for, as an inline writer would be, so a crash loses about a window, not a backlog.
    if (this.writer.background && !this.failure && this.queue.length + this.writing >= BACKLOG_BATCHES * this.maxBatch) {
      this.writer.drain();
      return this.startFlush();
    }
    this.schedule(this.queue.length >= this.maxBatch ? 0 : this.flushMs);
  }

  /** Count a list call or ping without storing it one by one. */
  countListCall(agent: string, method: string): void {
    const key = `${agent}\n${method}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
    this.schedule(this.counterFlushMs);
  }

  /** Run `hook` inside every flush transaction. */
  onFlush(hook: FlushHook): void {
    this.hooks.push(hook);
  }

  /** Ask for a flush soon even with no records queued (a hook has something to persist). */
  requestFlush(): void {
    this.hooksPending = true;
    this.schedule(this.flushMs);
  }

  private schedule(delayMs: number): void {
    if (this.immediate) return;
    if (delayMs === 0) {
      this.clearTimer();
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.startFlush();
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
      this.startFlush();
    }, delayMs);
    // Pending records must not keep a finished process alive; close() flushes them on shutdown.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /**
   * Write everything queued now and wait until it is committed (or failed). Safe to call any time; queries call it for
   * read-your-writes. With the writer thread this blocks the event loop only while that thread commits.
   */
  flush(): void {
    this.writer.drain();
    this.startFlush();
    this.writer.drain();
  }

  /** Hand everything queued to the writer in one transaction; one flush is in flight at a time, so the chain keeps its order. */
  private startFlush(): void {
    if (!this.db.open) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    if (this.queue.length === 0 && this.counters.size === 0 && !this.hooksPending) return;
    this.clearTimer();
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
    const batch = this.queue;
    const counters = this.counters;
    this.queue = [];
    this.counters = new Map();
    this.hooksPending = false;
    const statements: SqlStatement[] = [];
    const committed: Array<() => void> = [];
    try {
      for (const hook of this.hooks) {
        const work = hook();
        if (!work) continue;
        statements.push(...work.statements);
        if (work.committed) committed.push(work.committed);
      }
    } catch (err) {
      this.failBatch(batch, counters, err as Error);
      return;
    }
    this.inFlight = true;
    this.writing = batch.length;
    this.writer.submit({ records: batch, counters: [...counters], statements }, (err) => {
      this.inFlight = false;
      this.writing = 0;
      if (err) this.failBatch(batch, counters, err);
      else {
        this.failure = undefined;
        for (const done of committed) done();
        this.stats.written += batch.length;
        this.stats.flushes++;
        for (const p of batch) p.settle?.resolve();
      }
      const again = this.again;
      this.again = false;
      // After a failure failBatch has scheduled the retry with its back-off; otherwise what was asked for meanwhile goes now.
      if (again && !err && !this.closed && (this.queue.length > 0 || this.counters.size > 0 || this.hooksPending)) this.schedule(0);
    });
  }

  private failBatch(batch: PendingRecord[], counters: Map<string, number>, err: Error): void {
    this.stats.failedFlushes++;
    this.failure ??= { error: err.message, since: Date.now() };
    this.failure.error = err.message;
    for (const [key, count] of counters) this.counters.set(key, (this.counters.get(key) ?? 0) + count);
    const strict = batch.filter((p) => p.settle);
    for (const p of strict) p.settle?.reject(new Error(`audit write failed: ${err.message}`));
    const retry = batch.filter((p) => !p.settle);
    const room = MAX_QUEUE - this.queue.length;
    const kept = retry.length > room ? retry.slice(retry.length - Math.max(0, room)) : retry;
    this.stats.dropped += retry.length - kept.length;
    this.queue = kept.concat(this.queue);
    this.logger?.error(
      { err, retrying: kept.length, dropped: retry.length - kept.length },
      'audit flush failed; retrying with the next flush — check disk space and permissions of the data dir',
    );
    this.hooksPending = true;
    if (!this.closed) this.schedule(Math.max(this.flushMs, 1000));
  }

  /** Check the whole hash chain (flushes first). */
  verify(): VerifyResult {
    this.flush();
    return verifyChain(this.db, this.format.key);
  }

  /** One page of records, newest first. Throws InvalidQueryError for a bad filter or cursor. */
  queryAudit(filter: AuditFilter = {}): AuditPage {
    this.flush();
    return queryAuditPage(this.db, filter);
  }

  /** Every matching record, oldest first, for JSON-lines streaming. Throws InvalidQueryError for a bad filter. */
  exportAudit(filter: AuditFilter = {}): Iterator<AuditRecord> & Iterable<AuditRecord> {
    this.flush();
    return exportAuditRows(this.db, filter);
  }

  /** List-call and ping counts per UTC day (YYYY-MM-DD), agent and method. */
  callCounts(filter: { agent?: string; sinceDay?: string } = {}): CallCount[] {
    this.flush();
    return this.db
      .prepare<[string | null, string | null, string | null, string | null], CallCount>(
        `SELECT day, agent, method, count FROM call_counts
         WHERE (? IS NULL OR agent = ?) AND (? IS NULL OR day >= ?) ORDER BY day DESC, agent, method`,
      )
      .all(filter.agent ?? null, filter.agent ?? null, filter.sinceDay ?? null, filter.sinceDay ?? null);
  }

  /** Refused calls since `since` per reason; reads the time index, so only that window is touched. */
  refusalsSince(since: number): RefusalCount[] {
    this.flush();
    return this.db
      .prepare<[number], { reason: string | null; count: number }>(
        `SELECT reason, count(*) AS count FROM audit INDEXED BY audit_time
         WHERE time >= ? AND outcome = 'refused' AND kind <> 'approval' GROUP BY reason ORDER BY count DESC`,
      )
      .all(since)
      .map((r) => ({ reason: r.reason ?? 'unknown', count: r.count }));
  }

  /** Delete records older than `days` behind a verifiable anchor (see retention.ts); flushes first. */
  prune(days: number, now: number = Date.now()): PruneResult {
    if (!(days > 0)) throw new RangeError(`retention days must be a positive number, got ${days}`);
    this.flush();
    return pruneBefore(this.db, now - days * 86_400_000, now, (deleted) => {
      const head = this.head.read();
      if (head) this.head.write({ ...head, records: head.records - deleted });
    });
  }

  /**
   * Flush everything (one retry) and stop the timers; returns how many records could not be written, which are then
   * dropped with one error line saying so. The database stays open (it is shared); close it afterwards.
   */
  close(): number {
    if (this.closed) return 0;
    this.flush();
    if (this.queue.length > 0) this.flush();
    this.closed = true;
    const lost = this.queue.length;
    if (lost > 0) {
      this.stats.dropped += lost;
      this.queue = [];
      this.logger?.error(
        { unwritten: lost, err: this.failure?.error },
        `${lost} audit records could not be written at shutdown and are lost (${this.failure?.error}); fix the cause (disk space, permissions, a process holding the database locked) and check the trail with \`switchyard audit verify\``,
      );
    }
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.writer.close();
    for (const t of this.retentionTimers) clearTimeout(t);
    this.retentionTimers.length = 0;
    return lost;
  }
}

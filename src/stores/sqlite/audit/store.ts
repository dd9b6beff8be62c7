/** The audit writer: steps are queued on the response path and written, redacted and hash-chained, in batches. */
import type { VerifyResult } from '../../../audit/chain.js';
import type { AuditFilter, AuditPage, AuditRecord } from '../../../audit/query.js';
import { compileRedactor, DEFAULT_REDACT_PATTERNS } from '../../../audit/redact.js';
import type { RowFormat } from '../../../audit/rows.js';
import type { Step, StepOutcome, StepSink } from '../../../gateway/types.js';
import type { AuditLog, AuditStats, CallCount, PruneResult, RefusalCount, WriterHealth } from '../../audit.js';
import { AuditQueue, type AuditLogOptions, type TakenWork } from '../../audit-queue.js';

export type { AuditStats, CallCount, PruneResult, WriterHealth } from '../../audit.js';
import type { Db } from '../db.js';
import '../model-columns.js';
import { HeadStore } from './head.js';
import { exportAuditRows, queryAuditPage } from './query.js';
import { pruneBefore } from './retention.js';
import { chainTip, verifyChain } from './verify.js';
import type { SqlStatement } from './batch.js';
import { InlineWriter, ThreadWriter, type AuditWriter } from './writers.js';

/** The audit key's use is described in head.ts. */
export interface AuditStoreOptions extends AuditLogOptions {
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

/** Batches queued or in flight beyond which record() waits for the writer (see overBacklog). */
const BACKLOG_BATCHES = 4;

export class AuditStore implements StepSink, AuditLog {
  readonly durability: 'batched' | 'strict';
  private readonly format: RowFormat;
  private readonly head: HeadStore;
  private readonly writer: AuditWriter;
  private readonly hooks: FlushHook[] = [];
  private readonly queue: AuditQueue;
  /** Records of the flush the writer has not answered yet. */
  private writing = 0;
  private inFlight = false;
  /** A flush was asked for while one was in flight: start the next as soon as it is answered. */
  private again = false;

  constructor(
    readonly db: Db,
    opts: AuditStoreOptions = {},
  ) {
    this.queue = new AuditQueue(opts, { startFlush: () => this.startFlush(), overBacklog: () => this.overBacklog() });
    this.durability = this.queue.durability;
    this.format = { redactor: compileRedactor(opts.redact ?? DEFAULT_REDACT_PATTERNS), maxArgsLength: opts.maxArgsLength ?? 64 * 1024, key: opts.hmacKey };
    this.head = new HeadStore(db, opts.hmacKey);
    const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM audit');
    db.transaction(() => this.head.init(() => chainTip(db), () => count.get()?.n ?? 0)).immediate();
    const threaded = (opts.writer ?? 'thread') === 'thread' && !db.memory && !db.readonly && ThreadWriter.available();
    this.writer = threaded
      ? new ThreadWriter(db, { format: this.format, redact: opts.redact ?? DEFAULT_REDACT_PATTERNS, logger: opts.logger })
      : new InlineWriter(db, this.format);
    const days = opts.retentionDays;
    if (days !== undefined && days > 0) this.queue.startRetention(() => this.prune(days));
  }

  /** Records waiting for the writer (for the audit queue depth gauge). */
  get queueDepth(): number {
    this.writer.poll();
    return this.queue.length + this.writing;
  }

  getStats(): AuditStats {
    this.writer.poll();
    return this.queue.getStats(this.writing);
  }

  /** For /readyz: red while flushes fail, with the error and how many records wait. */
  health(): WriterHealth {
    this.writer.poll();
    return this.queue.health(this.writing);
  }

  /**
   * Queue one finished step. O(1): copies a few fields and schedules the writer. In strict mode the returned promise
   * resolves once the row is committed (concurrent records share one transaction) and rejects if the write fails.
   */
  record(step: Step, outcome: StepOutcome): void | Promise<void> {
    return this.queue.record(step, outcome);
  }

  /** A writer thread that fell behind is waited for, as an inline writer would be, so a crash loses about a window, not a backlog. */
  private overBacklog(): boolean {
    if (!this.writer.background || this.queue.failure || this.queue.length + this.writing < BACKLOG_BATCHES * this.queue.maxBatch) return false;
    this.writer.drain();
    this.startFlush();
    return true;
  }

  /** Count a list call or ping without storing it one by one. */
  countListCall(agent: string, method: string): void {
    this.queue.countListCall(agent, method);
  }

  /** Run `hook` inside every flush transaction. */
  onFlush(hook: FlushHook): void {
    this.hooks.push(hook);
  }

  /** Ask for a flush soon even with no records queued (a hook has something to persist). */
  requestFlush(): void {
    this.queue.request();
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
    if (this.queue.idle) return;
    const work = this.queue.take();
    const { batch, counters } = work;
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
      this.failBatch(work, err as Error);
      return;
    }
    this.inFlight = true;
    this.writing = batch.length;
    this.writer.submit({ records: batch, counters: [...counters], statements }, (err) => {
      this.inFlight = false;
      this.writing = 0;
      if (err) this.failBatch(work, err);
      else {
        for (const done of committed) done();
        this.queue.written(batch);
      }
      const again = this.again;
      this.again = false;
      // After a failure failBatch has scheduled the retry with its back-off; otherwise what was asked for meanwhile goes now.
      if (again && !err && !this.queue.closed && !this.queue.idle) this.queue.schedule(0);
    });
  }

  /** The hooks' statements were taken with the batch, so a retry is wanted even when no records wait. */
  private failBatch(work: TakenWork, err: Error): void {
    this.queue.failed(work, err, 'audit flush failed; retrying with the next flush — check disk space and permissions of the data dir', true);
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
    if (this.queue.closed) return 0;
    this.flush();
    if (this.queue.length > 0) this.flush();
    const lost = this.queue.shut(
      (n, error) =>
        `${n} audit records could not be written at shutdown and are lost (${error}); fix the cause (disk space, permissions, a process holding the database locked) and check the trail with \`switchyard audit verify\``,
    );
    this.writer.close();
    return lost;
  }
}

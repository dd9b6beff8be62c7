/** The audit writer: steps are queued on the response path and written, redacted and hash-chained, in batches. */
import type { Step, StepOutcome, StepSink } from '../gateway/types.js';
import type { Logger } from '../telemetry/logger.js';
import { chainTip, rowHash, verifyChain, type AuditRow, type VerifyResult } from './chain.js';
import type { Db } from './db.js';
import { exportAuditRows, queryAuditPage, type AuditFilter, type AuditPage, type AuditRecord } from './query.js';
import { compileRedactor, DEFAULT_REDACT_PATTERNS, type Redactor } from './redact.js';
import { pruneBefore, type PruneResult } from './retention.js';

export interface AuditStoreOptions {
  /** 'strict': record() resolves only once the row is committed. Default 'batched'. */
  durability?: 'batched' | 'strict';
  /** Longest a batched record waits before its transaction (default 100 ms). */
  flushMs?: number;
  /** Queue length that triggers a flush without waiting for the timer (default 500). */
  maxBatch?: number;
  /** Argument keys containing any of these (case-insensitive) are stored as "[REDACTED]". */
  redact?: readonly string[];
  /** Stored argument JSON longer than this is replaced by a truncated preview (default 64 KiB). */
  maxArgsLength?: number;
  /** How often list-call counters reach the database (default 1000 ms). */
  counterFlushMs?: number;
  /** Prune records older than this many days, at start and every 6 hours. */
  retentionDays?: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/**
 * Runs inside each flush transaction, after the batch's rows (e.g. persisting workflow step counters). It may return a
 * callback that runs only once the transaction has committed.
 */
export type FlushHook = (db: Db) => void | (() => void);

export interface CallCount {
  day: string;
  agent: string;
  method: string;
  count: number;
}

export interface AuditStats {
  queued: number;
  written: number;
  dropped: number;
  /** Committed flush transactions. */
  flushes: number;
  failedFlushes: number;
}

/** What record() keeps: plain fields copied off the Step; args by reference, redacted later in the writer. */
interface PendingRecord {
  time: number;
  workflowId: string;
  step: number;
  parentStep: number | undefined;
  agent: string;
  user: string | undefined;
  chain: readonly string[];
  kind: string;
  server: string | undefined;
  tool: string;
  args: unknown;
  outcome: string;
  reason: string | undefined;
  durationMs: number;
  bytes: number | undefined;
  tokens: number | undefined;
  traceparent: string | undefined;
  settle?: { resolve: () => void; reject: (err: Error) => void };
}

const MAX_QUEUE = 100_000;
const RETENTION_EVERY_MS = 6 * 60 * 60 * 1000;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** SQLite would rewrite lone surrogates on storage and break the hash; normalise them first. */
function text(value: string): string;
function text(value: string | undefined): string | null;
function text(value: string | undefined): string | null {
  if (value === undefined) return null;
  return LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATES, '\uFFFD') : value;
}

function optionalInt(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Math.round(value);
}

export class AuditStore implements StepSink {
  readonly durability: 'batched' | 'strict';
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly maxArgsLength: number;
  private readonly counterFlushMs: number;
  private readonly redactor: Redactor;
  private readonly logger: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly insert;
  private readonly upsertCount;
  private readonly hooks: FlushHook[] = [];
  private queue: PendingRecord[] = [];
  private counters = new Map<string, number>();
  private hooksPending = false;
  private tip: { lastId: number; lastHash: string };
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
    this.maxArgsLength = opts.maxArgsLength ?? 64 * 1024;
    this.counterFlushMs = opts.counterFlushMs ?? 1000;
    this.redactor = compileRedactor(opts.redact ?? DEFAULT_REDACT_PATTERNS);
    this.logger = opts.logger;
    this.tip = chainTip(db);
    this.insert = db.prepare(
      `INSERT INTO audit (id, time, workflow_id, step, parent_step, agent, "user", chain, kind, server, tool, args,
        outcome, reason, duration_ms, bytes, tokens, traceparent, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.upsertCount = db.prepare(
      `INSERT INTO call_counts (day, agent, method, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (day, agent, method) DO UPDATE SET count = count + excluded.count`,
    );
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
    return this.queue.length;
  }

  getStats(): AuditStats {
    return { ...this.stats, queued: this.queue.length };
  }

  /**
   * Queue one finished step. O(1): copies a few fields and schedules the writer. In strict mode the returned promise
   * resolves once the row is committed (concurrent records share one transaction) and rejects if the write fails.
   */
  record(step: Step, outcome: StepOutcome): void | Promise<void> {
    const pending: PendingRecord = {
      time: step.startedAt,
      workflowId: step.workflowId,
      step: step.stepNo,
      parentStep: step.parentStep,
      agent: step.caller.agentId,
      user: step.caller.user,
      chain: step.caller.chain,
      kind: step.kind,
      server: step.server,
      tool: step.target,
      args: step.args,
      outcome: outcome.outcome,
      reason: outcome.reason,
      durationMs: outcome.durationMs,
      bytes: outcome.bytes,
      tokens: outcome.tokens,
      traceparent: step.traceparent,
    };
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
        this.flush();
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
      this.flush();
    }, delayMs);
    // Pending records must not keep a finished process alive; close() flushes them on shutdown.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Write everything queued now, in one transaction. Safe to call any time; queries call it for read-your-writes. */
  flush(): void {
    if (!this.db.open) return;
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
    let written: { lastId: number; lastHash: string; committed: Array<() => void> };
    try {
      written = this.writeBatch(batch, counters);
    } catch (err) {
      this.failBatch(batch, counters, err as Error);
      return;
    }
    this.tip = { lastId: written.lastId, lastHash: written.lastHash };
    for (const done of written.committed) done();
    this.stats.written += batch.length;
    this.stats.flushes++;
    for (const p of batch) p.settle?.resolve();
  }

  private writeBatch(
    batch: PendingRecord[],
    counters: Map<string, number>,
  ): { lastId: number; lastHash: string; committed: Array<() => void> } {
    return this.db.transaction(() => {
      let { lastId, lastHash } = this.tip;
      for (const p of batch) {
        const row = this.toRow(p, lastId + 1, lastHash);
        this.insert.run(
          row.id, row.time, row.workflow_id, row.step, row.parent_step, row.agent, row.user, row.chain, row.kind,
          row.server, row.tool, row.args, row.outcome, row.reason, row.duration_ms, row.bytes, row.tokens,
          row.traceparent, row.prev_hash, row.hash,
        );
        lastId = row.id;
        lastHash = row.hash;
      }
      if (counters.size > 0) {
        const day = new Date().toISOString().slice(0, 10);
        for (const [key, count] of counters) {
          const cut = key.indexOf('\n');
          this.upsertCount.run(day, key.slice(0, cut), key.slice(cut + 1), count);
        }
      }
      const committed: Array<() => void> = [];
      for (const hook of this.hooks) {
        const after = hook(this.db);
        if (after) committed.push(after);
      }
      return { lastId, lastHash, committed };
    }).immediate();
  }

  private failBatch(batch: PendingRecord[], counters: Map<string, number>, err: Error): void {
    this.stats.failedFlushes++;
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

  /** Redact, serialise and hash one record: done here in the writer so the response path never pays for it. */
  private toRow(p: PendingRecord, id: number, prevHash: string): AuditRow {
    const unhashed: Omit<AuditRow, 'prev_hash' | 'hash'> = {
      id,
      time: Math.round(p.time),
      workflow_id: text(p.workflowId),
      step: p.step,
      parent_step: optionalInt(p.parentStep),
      agent: text(p.agent),
      user: text(p.user),
      chain: JSON.stringify(p.chain ?? []),
      kind: text(p.kind),
      server: text(p.server),
      tool: text(p.tool),
      args: this.argsJson(p.args),
      outcome: text(p.outcome),
      reason: text(p.reason),
      duration_ms: Number.isFinite(p.durationMs) ? Math.round(p.durationMs * 1000) / 1000 : 0,
      bytes: optionalInt(p.bytes),
      tokens: optionalInt(p.tokens),
      traceparent: text(p.traceparent),
    };
    return { ...unhashed, prev_hash: prevHash, hash: rowHash(prevHash, unhashed) };
  }

  private argsJson(args: unknown): string | null {
    if (args === undefined) return null;
    let json: string;
    try {
      json = JSON.stringify(this.redactor(args)) ?? 'null';
    } catch (err) {
      return JSON.stringify({ $unserializable: (err as Error).message });
    }
    if (json.length <= this.maxArgsLength) return json;
    return JSON.stringify({ $truncated: true, length: json.length, preview: json.slice(0, 1024) });
  }

  /** Check the whole hash chain (flushes first). */
  verify(): VerifyResult {
    this.flush();
    return verifyChain(this.db);
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

  /** Delete records older than `days` behind a verifiable anchor (see retention.ts); flushes first. */
  prune(days: number, now: number = Date.now()): PruneResult {
    if (!(days > 0)) throw new RangeError(`retention days must be a positive number, got ${days}`);
    this.flush();
    return pruneBefore(this.db, now - days * 86_400_000, now);
  }

  /** Flush everything and stop the timers. The database stays open (it is shared); close it afterwards. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    for (const t of this.retentionTimers) clearTimeout(t);
    this.retentionTimers.length = 0;
  }
}

/**
 * The audit log on PostgreSQL, shared by every replica: steps queued off the response path and written in one
 * transaction per flush (or awaited until COMMIT in `strict` mode), chained into one global hash chain under an
 * advisory lock (docs/decisions/0093-one-audit-chain-on-postgres.md).
 */
import { hostname } from 'node:os';
import type { VerifyResult } from '../../../audit/chain.js';
import type { AuditFilter, AuditPage, AuditRecord } from '../../../audit/query.js';
import { compileRedactor, DEFAULT_REDACT_PATTERNS } from '../../../audit/redact.js';
import { chainRow, pendingOf, rowFields, type PendingRecord, type RowFields, type RowFormat } from '../../../audit/rows.js';
import { searchWords } from '../../../audit/query.js';
import type { Step, StepOutcome } from '../../../gateway/types.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { AuditLog, AuditStats, CallCount, PruneResult, RefusalCount, WriterHealth } from '../../audit.js';
import type { Postgres } from '../pool.js';
import { checkFilter, exportAuditRows, queryAuditPage } from './query.js';
import { prunePgBefore } from './retention.js';
import { initHead, insertRows, readHead, withoutNul, writeHead, type PgQueryable } from './rows.js';
import { CHAIN_LOCK } from './schema.js';
import { verifyPgChain } from './verify.js';

export interface PgAuditLogOptions {
  /** 'strict': record() resolves only once the row is committed. Default 'batched'. */
  durability?: 'batched' | 'strict';
  /** Longest a batched record waits before its transaction (default 100 ms). */
  flushMs?: number;
  /** Queue length that triggers a flush without waiting for the timer (default 500). */
  maxBatch?: number;
  redact?: readonly string[];
  /** Stored argument JSON longer than this is replaced by a truncated preview (default 64 KiB). */
  maxArgsLength?: number;
  /** How often list-call counters reach the database (default 1000 ms). */
  counterFlushMs?: number;
  /** Prune records older than this many days, shortly after start and every 6 hours (any replica may; they take turns). */
  retentionDays?: number;
  /** The audit key, the same on every replica (audit.hmacKeyFile, a mounted secret); never stored in the database. */
  hmacKey?: Buffer;
  /** Written beside each row to say which replica appended it (default host:pid). */
  replica?: string;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

const MAX_QUEUE = 100_000;
/** Most records one flush transaction writes. */
const MAX_TRANSACTION = 5000;
const RETENTION_EVERY_MS = 6 * 60 * 60 * 1000;

export class PgAuditLog implements AuditLog {
  readonly durability: 'batched' | 'strict';
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly counterFlushMs: number;
  private readonly format: RowFormat;
  private readonly replica: string;
  private readonly logger: Pick<Logger, 'warn' | 'error'> | undefined;
  private queue: PendingRecord[] = [];
  private counters = new Map<string, number>();
  private tail: Promise<void> = Promise.resolve();
  private failure: { error: string; since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  private readonly retentionTimers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly stats: AuditStats = { queued: 0, written: 0, dropped: 0, flushes: 0, failedFlushes: 0 };

  /** Bring the schema up to date and check (or create) the shared head with this key, then start writing. */
  static async open(pg: Postgres, opts: PgAuditLogOptions = {}): Promise<PgAuditLog> {
    await pg.migrate();
    await pg.withLock(CHAIN_LOCK, (client) => initHead(client, opts.hmacKey));
    return new PgAuditLog(pg, opts);
  }

  private constructor(
    private readonly pg: Postgres,
    opts: PgAuditLogOptions,
  ) {
    this.durability = opts.durability ?? 'batched';
    this.flushMs = Math.max(0, opts.flushMs ?? 100);
    this.maxBatch = Math.max(1, opts.maxBatch ?? 500);
    this.counterFlushMs = opts.counterFlushMs ?? 1000;
    this.format = { redactor: compileRedactor(opts.redact ?? DEFAULT_REDACT_PATTERNS), maxArgsLength: opts.maxArgsLength ?? 64 * 1024, key: opts.hmacKey };
    this.replica = opts.replica ?? `${hostname()}:${process.pid}`;
    this.logger = opts.logger;
    if (opts.retentionDays !== undefined && opts.retentionDays > 0) this.startRetention(opts.retentionDays);
  }

  private startRetention(days: number): void {
    const run = (): void => {
      this.prune(days).catch((err: unknown) => this.logger?.error({ err }, 'audit retention prune failed; it is retried in 6 hours'));
    };
    this.retentionTimers.push(setTimeout(run, 1000).unref(), setInterval(run, RETENTION_EVERY_MS).unref());
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  getStats(): AuditStats {
    return { ...this.stats, queued: this.queue.length };
  }

  /** For /readyz: red while flushes fail, with the error and how many records wait. */
  health(): WriterHealth {
    if (!this.failure) return { ok: true };
    return { ok: false, error: this.failure.error, since: new Date(this.failure.since).toISOString(), queued: this.queue.length };
  }

  /** Queue one finished step (O(1)); in strict mode the promise resolves after COMMIT and rejects if the write fails. */
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
    this.schedule(this.queue.length >= this.maxBatch ? 0 : this.flushMs);
  }

  countListCall(agent: string, method: string): void {
    const key = `${agent}\n${method}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
    this.schedule(this.counterFlushMs);
  }

  private schedule(delayMs: number): void {
    if (this.immediate) return;
    if (delayMs === 0) {
      this.clearTimer();
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        void this.flush();
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
      void this.flush();
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
   * Write everything queued now; flushes run one after another, so records queued while one is in flight form the
   * next transaction (concurrent strict records share it). Never rejects: a failed batch is retried or rejected per record.
   */
  flush(): Promise<void> {
    const run = this.tail.then(() => this.writeQueued());
    this.tail = run;
    return run;
  }

  private async writeQueued(): Promise<void> {
    if (this.queue.length === 0 && this.counters.size === 0) return;
    this.clearTimer();
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
    // A backlog (after an outage) goes in several transactions, so none holds the chain or the statement timeout long.
    const batch = this.queue.length > MAX_TRANSACTION ? this.queue.slice(0, MAX_TRANSACTION) : this.queue;
    this.queue = this.queue.length > MAX_TRANSACTION ? this.queue.slice(MAX_TRANSACTION) : [];
    const counters = this.counters;
    this.counters = new Map();
    try {
      // Redaction, JSON and search words before the chain lock; only numbering and hashing happen while holding it.
      const fields = batch.map((p) => rowFields(withoutNul(p), this.format));
      const words = fields.map((f) => searchWords(f.args ?? '').join(' '));
      await this.pg.withLock(CHAIN_LOCK, (client) => this.writeBatch(client, fields, words, counters));
    } catch (err) {
      this.failBatch(batch, counters, err as Error);
      return;
    }
    this.failure = undefined;
    this.stats.written += batch.length;
    this.stats.flushes++;
    for (const p of batch) p.settle?.resolve();
    if (batch.length === MAX_TRANSACTION && this.queue.length > 0) return this.writeQueued();
  }

  /** Inside the chain lock: continue from the head as committed by whichever replica wrote last. */
  private async writeBatch(client: PgQueryable, batch: RowFields[], words: string[], counters: Map<string, number>): Promise<void> {
    if (batch.length > 0) {
      const head = await readHead(client);
      if (!head) throw new Error("the audit_head row is gone (deleted behind the gateway's back); run `switchyard audit verify`");
      let { lastId, lastHash } = head;
      const rows = batch.map((f) => {
        const row = chainRow(f, lastId + 1, lastHash, this.format.key);
        lastId = row.id;
        lastHash = row.hash;
        return row;
      });
      await insertRows(client, rows, words, this.replica);
      await writeHead(client, { lastId, lastHash, records: head.records + batch.length, keyedFrom: head.keyedFrom }, this.format.key);
    }
    if (counters.size > 0) {
      const agents: string[] = [];
      const methods: string[] = [];
      const counts: number[] = [];
      for (const [key, count] of counters) {
        const cut = key.indexOf('\n');
        agents.push(key.slice(0, cut));
        methods.push(key.slice(cut + 1));
        counts.push(count);
      }
      await client.query(
        `INSERT INTO call_counts (day, agent, method, count) SELECT $1, a, m, c FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t (a, m, c)
         ON CONFLICT (day, agent, method) DO UPDATE SET count = call_counts.count + excluded.count`,
        [new Date().toISOString().slice(0, 10), agents, methods, counts],
      );
    }
  }

  private failBatch(batch: PendingRecord[], counters: Map<string, number>, err: Error): void {
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
    this.logger?.error(
      { err, retrying: kept.length, dropped: retry.length - kept.length },
      `audit flush to PostgreSQL at ${this.pg.where} failed; retrying with the next flush — check that the server is up and store.postgres is right`,
    );
    if (!this.closed && (this.queue.length > 0 || this.counters.size > 0)) this.schedule(Math.max(this.flushMs, 1000));
  }

  /** Check the whole shared chain, every replica's records (flushes this replica's queue first). */
  async verify(): Promise<VerifyResult> {
    await this.flush();
    return verifyPgChain(this.pg, this.format.key);
  }

  async queryAudit(filter: AuditFilter = {}): Promise<AuditPage> {
    await this.flush();
    return queryAuditPage(this.pg, filter);
  }

  /** Every matching record, oldest first; a bad filter throws here, before anything streams. */
  exportAudit(filter: AuditFilter = {}): AsyncIterable<AuditRecord> {
    checkFilter(filter);
    const flushed = this.flush();
    const pg = this.pg;
    return {
      async *[Symbol.asyncIterator]() {
        await flushed;
        yield* exportAuditRows(pg, filter);
      },
    };
  }

  async callCounts(filter: { agent?: string; sinceDay?: string } = {}): Promise<CallCount[]> {
    await this.flush();
    const res = await this.pg.query<{ day: string; agent: string; method: string; count: string }>(
      `SELECT day, agent, method, count FROM call_counts
       WHERE ($1::text IS NULL OR agent = $1) AND ($2::text IS NULL OR day >= $2) ORDER BY day DESC, agent, method`,
      [filter.agent ?? null, filter.sinceDay ?? null],
    );
    return res.rows.map((r) => ({ day: r.day, agent: r.agent, method: r.method, count: Number(r.count) }));
  }

  async refusalsSince(since: number): Promise<RefusalCount[]> {
    await this.flush();
    const res = await this.pg.query<{ reason: string | null; count: number }>(
      `SELECT reason, count(*)::int AS count FROM audit
       WHERE time >= $1 AND outcome = 'refused' AND kind <> 'approval' GROUP BY reason ORDER BY count DESC`,
      [since],
    );
    return res.rows.map((r) => ({ reason: r.reason ?? 'unknown', count: r.count }));
  }

  async prune(days: number, now: number = Date.now()): Promise<PruneResult> {
    if (!(days > 0)) throw new RangeError(`retention days must be a positive number, got ${days}`);
    await this.flush();
    return prunePgBefore(this.pg, now - days * 86_400_000, now, this.format.key);
  }

  /** Flush everything (one retry) and stop the timers; returns how many records could not be written. The pool stays open. */
  async close(): Promise<number> {
    if (this.closed) return 0;
    await this.flush();
    if (this.queue.length > 0) await this.flush();
    this.closed = true;
    const lost = this.queue.length;
    if (lost > 0) {
      this.stats.dropped += lost;
      this.queue = [];
      this.logger?.error(
        { unwritten: lost, err: this.failure?.error },
        `${lost} audit records could not be written to PostgreSQL at shutdown and are lost (${this.failure?.error}); check the server and the trail with \`switchyard audit verify\``,
      );
    }
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    for (const t of this.retentionTimers) clearTimeout(t);
    this.retentionTimers.length = 0;
    return lost;
  }
}

/**
 * The audit log on PostgreSQL, shared by every replica: steps queued off the response path and written in one
 * transaction per flush (or awaited until COMMIT in `strict` mode), chained into one global hash chain under an
 * advisory lock (docs/decisions/0032-one-audit-chain-on-postgres.md).
 */
import { hostname } from 'node:os';
import type { VerifyResult } from '../../../audit/chain.js';
import type { AuditFilter, AuditPage, AuditRecord } from '../../../audit/query.js';
import { compileRedactor, DEFAULT_REDACT_PATTERNS } from '../../../audit/redact.js';
import { chainRow, rowFields, type RowFields, type RowFormat } from '../../../audit/rows.js';
import { searchWords } from '../../../audit/query.js';
import type { AuditHead } from '../../../audit/head.js';
import type { PendingRecord } from '../../../audit/rows.js';
import type { Step, StepOutcome } from '../../../gateway/types.js';
import type { AuditLog, AuditStats, CallCount, PruneResult, RefusalCount, WriterHealth } from '../../audit.js';
import { AuditQueue, type AuditLogOptions } from '../../audit-queue.js';
import type { Postgres } from '../pool.js';
import { checkFilter, exportAuditRows, queryAuditPage } from './query.js';
import { prunePgBefore } from './retention.js';
import { appendRows, headOf, initHead, READ_HEAD, withoutNul, type HeadRow, type PgClientQueryable } from './rows.js';
import { CHAIN_LOCK } from './schema.js';
import { verifyPgChain } from './verify.js';

/** Every replica may prune (they take turns); hmacKey is the same on every replica (audit.hmacKeyFile, a mounted secret). */
export interface PgAuditLogOptions extends AuditLogOptions {
  /** Written beside each row to say which replica appended it (default host:pid). */
  replica?: string;
}

/** Most records one flush transaction writes. */
const MAX_TRANSACTION = 5000;

export class PgAuditLog implements AuditLog {
  readonly durability: 'batched' | 'strict';
  private readonly format: RowFormat;
  private readonly replica: string;
  private readonly queue: AuditQueue;
  private tail: Promise<void> = Promise.resolve();
  /**
   * Records of a flush that failed and are queued again: its COMMIT may have landed with only the answer lost, so the
   * retry first leaves out those already in the trail (same workflow, step, time and replica) rather than append twice.
   */
  private readonly retried = new WeakSet<PendingRecord>();

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
    this.queue = new AuditQueue(opts, { startFlush: () => void this.flush() });
    this.durability = this.queue.durability;
    this.format = { redactor: compileRedactor(opts.redact ?? DEFAULT_REDACT_PATTERNS), maxArgsLength: opts.maxArgsLength ?? 64 * 1024, key: opts.hmacKey };
    this.replica = opts.replica ?? `${hostname()}:${process.pid}`;
    const days = opts.retentionDays;
    if (days !== undefined && days > 0) this.queue.startRetention(() => this.prune(days));
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  getStats(): AuditStats {
    return this.queue.getStats();
  }

  /** For /readyz: red while flushes fail, with the error and how many records wait. */
  health(): WriterHealth {
    return this.queue.health();
  }

  /** Queue one finished step (O(1)); in strict mode the promise resolves after COMMIT and rejects if the write fails. */
  record(step: Step, outcome: StepOutcome): void | Promise<void> {
    return this.queue.record(step, outcome);
  }

  countListCall(agent: string, method: string): void {
    this.queue.countListCall(agent, method);
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
    if (this.queue.idle) return;
    // A backlog (after an outage) goes in several transactions, so none holds the chain or the statement timeout long.
    const work = this.queue.take(MAX_TRANSACTION);
    const { batch, counters } = work;
    try {
      // Redaction, JSON and search words before the chain lock; only numbering and hashing happen while holding it.
      const fields = batch.map((p) => rowFields(withoutNul(p), this.format));
      const words = fields.map((f) => searchWords(f.args ?? '').join(' '));
      const again = batch.some((p) => this.retried.has(p));
      await this.pg.withLockReading<void, HeadRow>(CHAIN_LOCK, READ_HEAD, async (client, head) => {
        const fresh = again ? await this.notYetWritten(client, fields) : undefined;
        return this.writeBatch(client, headOf(head[0]), fresh ? fields.filter((_, i) => fresh[i]) : fields, fresh ? words.filter((_, i) => fresh[i]) : words, counters);
      });
    } catch (err) {
      for (const p of batch) this.retried.add(p);
      this.queue.failed(
        work,
        err as Error,
        `audit flush to PostgreSQL at ${this.pg.where} failed; retrying with the next flush — check that the server is up and store.postgres is right`,
      );
      return;
    }
    this.queue.written(batch);
    if (batch.length === MAX_TRANSACTION && this.queue.length > 0) return this.writeQueued();
  }

  /** Which of a retried batch's records the trail does not hold yet (a lost COMMIT answer may have written them). */
  private async notYetWritten(client: PgClientQueryable, batch: RowFields[]): Promise<boolean[]> {
    const { rows } = await client.query<{ workflow_id: string; step: number; time: string }>(
      `SELECT workflow_id, step, time FROM audit
       WHERE (workflow_id, step) IN (SELECT * FROM unnest($1::text[], $2::int[])) AND replica = $3`,
      [batch.map((f) => f.workflow_id), batch.map((f) => f.step), this.replica],
    );
    const have = new Set(rows.map((r) => `${r.workflow_id}\n${r.step}\n${r.time}`));
    return batch.map((f) => !have.has(`${f.workflow_id}\n${f.step}\n${f.time}`));
  }

  /** Inside the chain lock: continue from the head as committed by whichever replica wrote last. */
  private async writeBatch(client: PgClientQueryable, head: AuditHead | undefined, batch: RowFields[], words: string[], counters: Map<string, number>): Promise<void> {
    if (batch.length > 0) {
      if (!head) throw new Error("the audit_head row is gone (deleted behind the gateway's back); run `switchyard audit verify`");
      let { lastId, lastHash } = head;
      const rows = batch.map((f) => {
        const row = chainRow(f, lastId + 1, lastHash, this.format.key);
        lastId = row.id;
        lastHash = row.hash;
        return row;
      });
      await appendRows(client, rows, words, this.replica, { lastId, lastHash, records: head.records + batch.length, keyedFrom: head.keyedFrom }, this.format.key);
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
    if (this.queue.closed) return 0;
    await this.flush();
    if (this.queue.length > 0) await this.flush();
    return this.queue.shut(
      (n, error) =>
        `${n} audit records could not be written to PostgreSQL at shutdown and are lost (${error}); check the server and the trail with \`switchyard audit verify\``,
    );
  }
}

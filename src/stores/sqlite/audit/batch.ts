/** One flush transaction of the audit writer: the batch's rows, the chain head, list-call counters and hook statements. */
import { toRow, type PendingRecord, type RowFormat } from '../../../audit/rows.js';
import type Database from 'better-sqlite3';
import type { Db } from '../db.js';
import { HeadStore } from './head.js';
import { INDEX_ARGS_SQL } from './search.js';

/** A statement a flush hook adds to the transaction; plain data, so it can cross to the writer thread. */
export interface SqlStatement {
  sql: string;
  params: Array<string | number | null>;
}

/** What one flush writes, in one BEGIN IMMEDIATE transaction. */
export interface WriteJob {
  records: PendingRecord[];
  /** `agent\nmethod` → calls to add to today's counter. */
  counters: Array<[string, number]>;
  statements: SqlStatement[];
}

type Statement = Database.Statement<unknown[]>;

/** A connection's prepared statements for flush transactions (the main thread's, or the writer thread's own). */
export class BatchWriter {
  private readonly head: HeadStore;
  private readonly insert: Statement;
  private readonly upsertCount: Statement;
  private readonly indexArgs: Statement;
  private readonly prepared = new Map<string, Statement>();

  constructor(
    private readonly db: Db,
    private readonly format: RowFormat,
  ) {
    this.head = new HeadStore(db, format.key);
    this.insert = db.prepare(
      `INSERT INTO audit (id, time, workflow_id, step, parent_step, agent, "user", chain, kind, server, tool, args,
        outcome, reason, duration_ms, bytes, tokens, traceparent, model, team, cost_usd, model_info, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.indexArgs = db.prepare(INDEX_ARGS_SQL);
    this.upsertCount = db.prepare(
      `INSERT INTO call_counts (day, agent, method, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (day, agent, method) DO UPDATE SET count = count + excluded.count`,
    );
  }

  /**
   * Write the job or throw. The chain continues from the head as committed, not from a cached tip, so another
   * process writing to the same database (e.g. `stdio` beside `serve`) interleaves its records instead of colliding.
   */
  write(job: WriteJob): void {
    this.db.transaction(() => {
      const head = this.head.read();
      if (!head) throw new Error('the audit_head row is gone (deleted behind the gateway\'s back); run `switchyard audit verify`');
      let { lastId, lastHash } = head;
      const before = lastId;
      for (const p of job.records) {
        const row = toRow(p, lastId + 1, lastHash, this.format);
        this.insert.run(
          row.id, row.time, row.workflow_id, row.step, row.parent_step, row.agent, row.user, row.chain, row.kind,
          row.server, row.tool, row.args, row.outcome, row.reason, row.duration_ms, row.bytes, row.tokens,
          row.traceparent, row.model ?? null, row.team ?? null, row.cost_usd ?? null, row.model_info ?? null, row.prev_hash, row.hash,
        );
        lastId = row.id;
        lastHash = row.hash;
      }
      if (job.records.length > 0) {
        // One statement for the batch: FTS5 writes a segment per statement, which per row was most of the insert's cost.
        this.indexArgs.run(before, lastId);
        this.head.write({ lastId, lastHash, records: head.records + job.records.length, keyedFrom: head.keyedFrom });
      }
      if (job.counters.length > 0) {
        const day = new Date().toISOString().slice(0, 10);
        for (const [key, count] of job.counters) {
          const cut = key.indexOf('\n');
          this.upsertCount.run(day, key.slice(0, cut), key.slice(cut + 1), count);
        }
      }
      for (const s of job.statements) this.statement(s.sql).run(...s.params);
    }).immediate();
  }

  private statement(sql: string): Statement {
    let s = this.prepared.get(sql);
    if (!s) this.prepared.set(sql, (s = this.db.prepare(sql)));
    return s;
  }
}

/**
 * The audit log in process memory, for tests and tools without a data directory: rows are redacted and hash-chained
 * exactly as the SQLite log writes them, at once (nothing to batch), so queries, export, verify and prune agree.
 */
import { GENESIS_HASH, rowHash, type AuditRow, type ChainAnchor, type VerifyResult } from '../../audit/chain.js';
import { decodeCursor, encodeCursor, matchesFilter, pageSize, toAuditRecord, type AuditFilter, type AuditPage, type AuditRecord } from '../../audit/query.js';
import { compileRedactor, DEFAULT_REDACT_PATTERNS } from '../../audit/redact.js';
import { pendingOf, toRow, type RowFormat } from '../../audit/rows.js';
import type { Step, StepOutcome } from '../../gateway/types.js';
import type { AuditLog, AuditStats, CallCount, PruneResult, RefusalCount, WriterHealth } from '../audit.js';
import type { Clock } from '../types.js';

export interface MemoryAuditOptions {
  hmacKey?: Buffer;
  /** Glob patterns of argument keys to redact (default: the gateway's). */
  redact?: readonly string[];
  maxArgsLength?: number;
  now?: Clock;
}

export class MemoryAuditLog implements AuditLog {
  private rows: AuditRow[] = [];
  private anchor?: ChainAnchor;
  private readonly counts = new Map<string, number>();
  private readonly format: RowFormat;
  private readonly now: Clock;
  private written = 0;
  private closed = false;

  constructor(opts: MemoryAuditOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.format = { redactor: compileRedactor(opts.redact ?? DEFAULT_REDACT_PATTERNS), maxArgsLength: opts.maxArgsLength ?? 65_536, key: opts.hmacKey };
  }

  record(step: Step, outcome: StepOutcome): void {
    if (this.closed) throw new Error('audit log is closed; the step was not recorded');
    const last = this.rows[this.rows.length - 1];
    const lastId = last?.id ?? this.anchor?.lastId ?? 0;
    const lastHash = last?.hash ?? this.anchor?.lastHash ?? GENESIS_HASH;
    this.rows.push(toRow(pendingOf(step, outcome), lastId + 1, lastHash, this.format));
    this.written++;
  }

  countListCall(agent: string, method: string): void {
    const key = `${new Date(this.now()).toISOString().slice(0, 10)}\n${agent}\n${method}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  flush(): void {}

  verify(): VerifyResult {
    let expectedPrev = this.anchor?.lastHash ?? GENESIS_HASH;
    let checked = 0;
    for (const row of this.rows) {
      const where = { id: row.id, workflowId: row.workflow_id, step: row.step };
      if (row.prev_hash !== expectedPrev) return { ok: false, records: checked, firstBroken: where, message: 'its prev_hash does not match the record before it' };
      if (rowHash(row.prev_hash, row, this.format.key) !== row.hash) {
        return { ok: false, records: checked, firstBroken: where, message: 'its stored fields do not match its hash: the record was altered after it was written' };
      }
      expectedPrev = row.hash;
      checked++;
    }
    return { ok: true, records: checked, ...(this.anchor ? { anchor: this.anchor } : {}), ...(this.format.key ? { keyed: true as const } : {}) };
  }

  queryAudit(filter: AuditFilter = {}): AuditPage {
    const limit = pageSize(filter.limit);
    const before = filter.cursor !== undefined ? decodeCursor('a', filter.cursor) : Number.POSITIVE_INFINITY;
    const page: AuditRow[] = [];
    let more = false;
    for (let i = this.rows.length - 1; i >= 0; i--) {
      const row = this.rows[i]!;
      if (row.id >= before || !matchesFilter(row, filter)) continue;
      if (page.length === limit) {
        more = true;
        break;
      }
      page.push(row);
    }
    const last = page[page.length - 1];
    return { records: page.map(toAuditRecord), nextCursor: more && last ? encodeCursor('a', last.id) : null };
  }

  exportAudit(filter: AuditFilter = {}): Iterable<AuditRecord> {
    const { limit: _limit, cursor: _cursor, ...where } = filter;
    // A bad filter throws here, before anything streams.
    if (this.rows[0]) matchesFilter(this.rows[0], where);
    else matchesFilter({ time: 0 } as AuditRow, where);
    const rows = this.rows;
    return {
      *[Symbol.iterator]() {
        for (const row of rows) if (matchesFilter(row, where)) yield toAuditRecord(row);
      },
    };
  }

  callCounts(filter: { agent?: string; sinceDay?: string } = {}): CallCount[] {
    const out: CallCount[] = [];
    for (const [key, count] of this.counts) {
      const [day, agent, method] = key.split('\n') as [string, string, string];
      if (filter.agent !== undefined && agent !== filter.agent) continue;
      if (filter.sinceDay !== undefined && day < filter.sinceDay) continue;
      out.push({ day, agent, method, count });
    }
    return out.sort((a, b) => (a.day !== b.day ? (a.day < b.day ? 1 : -1) : a.agent !== b.agent ? (a.agent < b.agent ? -1 : 1) : a.method < b.method ? -1 : 1));
  }

  refusalsSince(since: number): RefusalCount[] {
    const counts = new Map<string, number>();
    for (const row of this.rows) {
      if (row.time < since || row.outcome !== 'refused' || row.kind === 'approval') continue;
      const reason = row.reason ?? 'unknown';
      counts.set(reason, (counts.get(reason) ?? 0) + 1);
    }
    return [...counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count);
  }

  prune(days: number, now: number = this.now()): PruneResult {
    if (!(days > 0)) throw new RangeError(`retention days must be a positive number, got ${days}`);
    const cutoff = now - days * 86_400_000;
    const firstKept = this.rows.findIndex((r) => r.time >= cutoff);
    const deleted = firstKept === -1 ? this.rows.length : firstKept;
    const cutDay = new Date(cutoff).toISOString().slice(0, 10);
    for (const key of this.counts.keys()) if (key.slice(0, 10) < cutDay) this.counts.delete(key);
    if (deleted === 0) return { deleted: 0, anchorId: null };
    const last = this.rows[deleted - 1]!;
    this.anchor = { lastId: last.id, lastHash: last.hash };
    this.rows = this.rows.slice(deleted);
    return { deleted, anchorId: last.id };
  }

  getStats(): AuditStats {
    return { queued: 0, written: this.written, dropped: 0, flushes: this.written, failedFlushes: 0 };
  }

  health(): WriterHealth {
    return { ok: true };
  }

  close(): number {
    this.closed = true;
    return 0;
  }
}

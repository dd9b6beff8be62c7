/**
 * The audit log: steps appended (queued on the response path and written in hash-chained batches, or awaited in
 * `strict` mode), queried, exported, verified and pruned. Records, filters and the chain's hashing are the audit
 * room's (src/audit/); a store keeps them and answers queries.
 */
import type { VerifyResult } from '../audit/chain.js';
import type { AuditFilter, AuditPage, AuditRecord } from '../audit/query.js';
import type { Step, StepOutcome, StepSink } from '../gateway/types.js';
import type { Awaitable } from './types.js';

export interface CallCount {
  day: string;
  agent: string;
  method: string;
  count: number;
}

export interface RefusalCount {
  reason: string;
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

/** Whether the writer is keeping up: `ok: false` from the first failed flush until one succeeds again. */
export type WriterHealth = { ok: true } | { ok: false; error: string; since: string; queued: number };

export interface PruneResult {
  deleted: number;
  /** Id of the last deleted record, now the chain's anchor; null when nothing was old enough. */
  anchorId: number | null;
}

export interface AuditLog extends StepSink {
  /** Append a finished step; resolves once it is durable only in `strict` mode. */
  record(step: Step, outcome: StepOutcome): void | Promise<void>;
  /** Count a list call or ping (kept per day, agent and method instead of one record each). */
  countListCall(agent: string, method: string): void;
  /** Write what is queued now. */
  flush(): Awaitable<void>;
  verify(): Awaitable<VerifyResult>;
  queryAudit(filter?: AuditFilter): Awaitable<AuditPage>;
  /** Every matching record, oldest first, read in pages so an export never holds the whole trail. */
  exportAudit(filter?: AuditFilter): Iterable<AuditRecord> | AsyncIterable<AuditRecord>;
  callCounts(filter?: { agent?: string; sinceDay?: string }): Awaitable<CallCount[]>;
  /** Refused calls since `since` (epoch ms) per reason, most first; approval decision steps are not calls. */
  refusalsSince(since: number): Awaitable<RefusalCount[]>;
  /** Delete records older than `days`, keeping the chain verifiable through an anchor. */
  prune(days: number, now?: number): Awaitable<PruneResult>;
  getStats(): AuditStats;
  health(): WriterHealth;
  /** Flush and stop; returns how many queued records could not be written. */
  close(): Awaitable<number>;
}

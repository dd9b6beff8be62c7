/** The audit hash chain: each record's hash covers its fields and the previous record's hash (verified in src/stores/sqlite/audit/verify.ts). */
import { createHash, createHmac } from 'node:crypto';

/** A stored audit row, column for column. */
export interface AuditRow {
  id: number;
  time: number;
  workflow_id: string;
  step: number;
  parent_step: number | null;
  agent: string;
  user: string | null;
  /** JSON array text. */
  chain: string;
  kind: string;
  server: string | null;
  tool: string;
  /** JSON text of the redacted arguments. */
  args: string | null;
  outcome: string;
  reason: string | null;
  duration_ms: number;
  bytes: number | null;
  tokens: number | null;
  traceparent: string | null;
  /** Model calls (audit-model v1): the gateway's model name, the caller's team, the cost, and the rest as JSON. */
  model?: string | null;
  team?: string | null;
  cost_usd?: number | null;
  /** JSON text: provider, upstreamModel, tokens {input, output, cachedInput}, finishReason, ttftMs, tokensEstimated, bodies. */
  model_info?: string | null;
  prev_hash: string;
  hash: string;
}

/** The previous hash of the very first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Canonical form: a JSON array of the hashed fields in a fixed order, so key order can never change a hash. */
export function canonicalRow(row: Omit<AuditRow, 'prev_hash' | 'hash'>): string {
  const base = [
    row.id,
    row.time,
    row.workflow_id,
    row.step,
    row.parent_step,
    row.agent,
    row.user,
    row.chain,
    row.kind,
    row.server,
    row.tool,
    row.args,
    row.outcome,
    row.reason,
    row.duration_ms,
    row.bytes,
    row.tokens,
    row.traceparent,
  ];
  // Model fields are hashed only where a row has them, so rows written before they existed keep their hashes.
  const model = [row.model ?? null, row.team ?? null, row.cost_usd ?? null, row.model_info ?? null];
  return JSON.stringify(model.every((v) => v === null) ? base : [...base, ...model]);
}

/** SHA-256 of the previous hash and the row; with `key`, HMAC-SHA256 instead, so nobody without the key can rehash. */
export function rowHash(prevHash: string, row: Omit<AuditRow, 'prev_hash' | 'hash'>, key?: Buffer): string {
  const h = key ? createHmac('sha256', key) : createHash('sha256');
  return h.update(prevHash).update(canonicalRow(row)).digest('hex');
}

export interface ChainAnchor {
  lastId: number;
  lastHash: string;
}

export type VerifyResult =
  | { ok: true; records: number; anchor?: ChainAnchor; keyed?: true }
  | { ok: false; records: number; firstBroken?: { id: number; workflowId: string; step: number }; message: string };


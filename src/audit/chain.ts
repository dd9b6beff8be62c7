/** The audit hash chain: each record's hash covers its fields and the previous record's hash. */
import { createHash, createHmac } from 'node:crypto';
import type { Db } from './db.js';
import { checkHead, readHead, type AuditHead } from './head.js';

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

/** The newest anchor left by pruning, if any: verify starts after its record. */
export function readAnchor(db: Db): ChainAnchor | undefined {
  const row = db
    .prepare<[], { last_id: number; last_hash: string }>('SELECT last_id, last_hash FROM audit_anchor ORDER BY last_id DESC LIMIT 1')
    .get();
  return row ? { lastId: row.last_id, lastHash: row.last_hash } : undefined;
}

/** Where the chain continues from: the newest record, else the anchor, else genesis. */
export function chainTip(db: Db): { lastId: number; lastHash: string } {
  const last = db.prepare<[], { id: number; hash: string }>('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1').get();
  if (last) return { lastId: last.id, lastHash: last.hash };
  return readAnchor(db) ?? { lastId: 0, lastHash: GENESIS_HASH };
}

export type VerifyResult =
  | { ok: true; records: number; anchor?: ChainAnchor; keyed?: true }
  | { ok: false; records: number; firstBroken?: { id: number; workflowId: string; step: number }; message: string };

/**
 * Walk every record in id order, checking each link and each record's own hash (keyed from head.keyedFrom on), then
 * compare the end of the chain and the record count with the head, so deleting the newest records is detected too.
 */
export function verifyChain(db: Db, key?: Buffer): VerifyResult {
  // One read transaction: head and rows from the same snapshot while a gateway keeps writing.
  return db.transaction(() => verifySnapshot(db, key))();
}

function verifySnapshot(db: Db, key: Buffer | undefined): VerifyResult {
  const head = readHead(db);
  const headProblem = checkHead(head, key);
  if (headProblem) return { ok: false, records: 0, message: headProblem };
  const anchor = readAnchor(db);
  const keyedFrom = head?.keyedFrom ?? null;
  let expectedPrev = anchor?.lastHash ?? GENESIS_HASH;
  let checked = 0;
  let last: { id: number; hash: string } | undefined;
  const rows = db.prepare<[], AuditRow>('SELECT * FROM audit ORDER BY id ASC').iterate();
  for (const row of rows) {
    const where = { id: row.id, workflowId: row.workflow_id, step: row.step };
    if (row.prev_hash !== expectedPrev) {
      const before = checked === 0 ? (anchor ? `the pruning anchor (record ${anchor.lastId})` : 'the start of the chain') : 'the previous record';
      return {
        ok: false,
        records: checked,
        firstBroken: where,
        message: `its prev_hash does not match ${before}: a record before it was deleted, inserted or rewritten`,
      };
    }
    const actual = rowHash(row.prev_hash, row, keyedFrom !== null && row.id >= keyedFrom ? key : undefined);
    if (actual !== row.hash) {
      return { ok: false, records: checked, firstBroken: where, message: 'its stored fields do not match its hash: the record was altered after it was written' };
    }
    expectedPrev = row.hash;
    last = { id: row.id, hash: row.hash };
    checked++;
  }
  if (head) {
    const endProblem = checkEnd(head, last, checked, anchor);
    if (endProblem) return { ok: false, records: checked, message: endProblem };
  }
  return { ok: true, records: checked, ...(anchor ? { anchor } : {}), ...(keyedFrom !== null ? { keyed: true as const } : {}) };
}

function checkEnd(head: AuditHead, last: { id: number; hash: string } | undefined, records: number, anchor: ChainAnchor | undefined): string | undefined {
  const endId = last?.id ?? 0;
  if (head.records > 0 && endId < head.lastId) {
    const from = last ? last.id + 1 : (anchor?.lastId ?? 0) + 1;
    const missing = from === head.lastId ? `record ${from} was deleted` : `records ${from} to ${head.lastId} were deleted`;
    const where = last ? `ends at record ${endId}` : 'is empty';
    return `the trail ${where} but the head says it ends at record ${head.lastId}: ${missing}`;
  }
  if (last && (last.id !== head.lastId || last.hash !== head.lastHash)) {
    return `the last record (${last.id}) is not the one the head names (${head.lastId}): records were appended or rewritten behind the writer's back`;
  }
  if (records !== head.records) {
    return `the head counts ${head.records} records but ${records} are present: ${Math.abs(head.records - records)} records were ${records < head.records ? 'deleted' : 'added'}`;
  }
  return undefined;
}

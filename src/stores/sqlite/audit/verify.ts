/** Walking the stored chain: where it continues from, and whether every link, hash and the head still hold. */
import { GENESIS_HASH, rowHash, type AuditRow, type ChainAnchor, type VerifyResult } from '../../../audit/chain.js';
import { checkHead, type AuditHead } from '../../../audit/head.js';
import type { Db } from '../db.js';
import { readHead } from './head.js';

/** Whether the database holds an audit trail at all (a stranger's file, or one the gateway never started on, does not). */
export function hasAuditTable(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get() !== undefined;
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

/** Walking the stored chain: where it continues from, and whether every link, hash and the head still hold. */
import { GENESIS_HASH, type AuditRow, type ChainAnchor, type VerifyResult } from '../../../audit/chain.js';
import { ChainWalk } from '../../../audit/chain-walk.js';
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

/** Walk every record in id order against the head (see audit/chain-walk.ts). */
export function verifyChain(db: Db, key?: Buffer): VerifyResult {
  // One read transaction: head and rows from the same snapshot while a gateway keeps writing.
  return db.transaction(() => verifySnapshot(db, key))();
}

function verifySnapshot(db: Db, key: Buffer | undefined): VerifyResult {
  const walk = new ChainWalk(readHead(db), readAnchor(db), key);
  if (walk.done) return walk.result();
  for (const row of db.prepare<[], AuditRow>('SELECT * FROM audit ORDER BY id ASC').iterate()) {
    walk.add(row);
    if (walk.done) break;
  }
  return walk.result();
}

/** Retention: delete a prefix of old audit records while keeping the hash chain verifiable through an anchor. */
import type { PruneResult } from '../../audit.js';
import type { Db } from '../db.js';

/**
 * Delete records that started before `cutoff` (epoch ms). Only a prefix by id goes, so the chain has no holes; the hash
 * of its last record is written to audit_anchor in the same transaction. Ended workflows and day counters past the
 * cutoff go too. `onPruned` runs in the same transaction (the writer lowers the head's record count there).
 */
export function pruneBefore(db: Db, cutoff: number, now: number, onPruned?: (deleted: number) => void): PruneResult {
  return db
    .transaction((): PruneResult => {
      const firstKept = db.prepare<[number], { id: number | null }>('SELECT min(id) AS id FROM audit WHERE time >= ?').get(cutoff)?.id;
      const last = db
        .prepare<[number], { id: number; hash: string }>('SELECT id, hash FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1')
        .get(firstKept ?? Number.MAX_SAFE_INTEGER);
      db.prepare('DELETE FROM workflows WHERE ended_at IS NOT NULL AND ended_at < ?').run(cutoff);
      db.prepare('DELETE FROM call_counts WHERE day < ?').run(new Date(cutoff).toISOString().slice(0, 10));
      if (!last) return { deleted: 0, anchorId: null };
      const { changes } = db.prepare('DELETE FROM audit WHERE id <= ?').run(last.id);
      db.prepare('INSERT INTO audit_anchor (last_id, last_hash, pruned_at, deleted) VALUES (?, ?, ?, ?)').run(last.id, last.hash, now, changes);
      onPruned?.(changes);
      return { deleted: changes, anchorId: last.id };
    })
    .immediate();
}

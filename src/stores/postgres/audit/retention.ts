/** Retention on PostgreSQL: delete a prefix of old records behind a verifiable anchor, under the chain lock. */
import type { PruneResult } from '../../audit.js';
import type { Postgres } from '../pool.js';
import { readHead, writeHead } from './rows.js';
import { CHAIN_LOCK } from './schema.js';

/**
 * Delete records that started before `cutoff` (epoch ms): only a prefix by id, so the chain has no holes; the hash of
 * the last deleted record becomes the anchor and the head's count drops, all in the transaction that appends wait for.
 * Workflows that ended before the cutoff and day counters older than it go too.
 */
export function prunePgBefore(pg: Pick<Postgres, 'withLock'>, cutoff: number, now: number, key: Buffer | undefined): Promise<PruneResult> {
  return pg.withLock(CHAIN_LOCK, async (client): Promise<PruneResult> => {
    await client.query('DELETE FROM call_counts WHERE day < $1', [new Date(cutoff).toISOString().slice(0, 10)]);
    // Ended workflows go with their steps, as on SQLite; the table is the workflows room's and may not exist yet.
    if ((await client.query<{ t: string | null }>("SELECT to_regclass('workflows')::text AS t")).rows[0]?.t) {
      await client.query('DELETE FROM workflows WHERE ended_at IS NOT NULL AND ended_at < $1', [cutoff]);
    }
    const firstKept = (await client.query<{ id: string | null }>('SELECT min(id) AS id FROM audit WHERE time >= $1', [cutoff])).rows[0]?.id ?? null;
    const last = (
      await client.query<{ id: string; hash: string }>('SELECT id, hash FROM audit WHERE id < $1 ORDER BY id DESC LIMIT 1', [firstKept ?? Number.MAX_SAFE_INTEGER])
    ).rows[0];
    if (!last) return { deleted: 0, anchorId: null };
    const deleted = (await client.query('DELETE FROM audit WHERE id <= $1', [last.id])).rowCount ?? 0;
    await client.query('INSERT INTO audit_anchor (last_id, last_hash, pruned_at, deleted) VALUES ($1, $2, $3, $4)', [last.id, last.hash, now, deleted]);
    const head = await readHead(client);
    if (head) await writeHead(client, { ...head, records: head.records - deleted }, key);
    return { deleted, anchorId: Number(last.id) };
  });
}

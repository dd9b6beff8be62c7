/** Verifying the whole shared trail: one snapshot (REPEATABLE READ) read in id order a page at a time, while replicas write. */
import type { VerifyResult } from '../../../audit/chain.js';
import { ChainWalk } from '../../../audit/chain-walk.js';
import type { Postgres } from '../pool.js';
import { readAnchor, readHead, ROW_COLUMNS, selectRows, type PgQueryable } from './rows.js';

const PAGE = 2000;

/** Whether the database holds an audit trail (a stranger's database, or one no gateway started on, does not). */
export async function hasAuditTables(q: PgQueryable): Promise<boolean> {
  const res = await q.query<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema() AND tablename IN ('audit', 'audit_head')");
  return Number(res.rows[0]?.n ?? 0) === 2;
}

export function verifyPgChain(pg: Pick<Postgres, 'transaction'>, key: Buffer | undefined): Promise<VerifyResult> {
  return pg.transaction(async (client) => {
    // Head, anchor and every page from one snapshot, so appends committed meanwhile are neither half-seen nor missed.
    await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const walk = new ChainWalk(await readHead(client), await readAnchor(client), key);
    let after = -1;
    while (!walk.done) {
      const rows = await selectRows(client, `SELECT ${ROW_COLUMNS} FROM audit WHERE id > $1 ORDER BY id LIMIT ${PAGE}`, [after]);
      for (const row of rows) {
        walk.add(row);
        if (walk.done) break;
      }
      const last = rows[rows.length - 1];
      if (!last || rows.length < PAGE) break;
      after = last.id;
    }
    return walk.result();
  });
}

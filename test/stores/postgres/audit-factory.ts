// Opening a PgAuditLog on the store dir's test database (databases.ts: the same database when reopened).
import type { Postgres } from '../../../src/stores/postgres/pool.js';
import { PgAuditLog, type PgAuditLogOptions } from '../../../src/stores/postgres/audit/store.js';
import { pgFor } from './databases.js';

export async function openPgAudit(dir: string, opts: PgAuditLogOptions = {}): Promise<{ log: PgAuditLog; pg: Postgres; close(): Promise<void> }> {
  const pg = await pgFor(dir);
  const log = await PgAuditLog.open(pg, { flushMs: 60_000, ...opts });
  return {
    log,
    pg,
    close: async () => {
      await log.close();
      await pg.close();
    },
  };
}

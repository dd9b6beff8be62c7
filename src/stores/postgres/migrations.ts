/**
 * Versioned per-room migrations for the shared PostgreSQL store, the same rules as src/stores/sqlite/db.ts: versions
 * ascend per room, each applies once per database, a shipped migration never changes. Replicas starting together
 * take pg_advisory_lock first, so each migration runs exactly once however many start at the same moment.
 */
import type pg from 'pg';
import type { Logger } from 'pino';

export interface PgMigration {
  /** The room that owns the tables, e.g. 'workflows', 'audit'; versions are numbered per room. */
  room: string;
  version: number;
  /** SQL run inside one transaction with the version bookkeeping (several statements allowed). */
  sql: string;
}

/** The advisory lock key every replica takes while migrating ('SWYD' 'MIGR' as two int4 halves). */
export const MIGRATION_LOCK: readonly [number, number] = [0x53575944, 0x4d494752];

const registry = new Map<string, PgMigration>();

function key(room: string, version: number): string {
  return `${room}\u0000${version}`;
}

/**
 * Add a room's PostgreSQL migration. Registering the same (room, version) twice with identical SQL is a no-op; with
 * different SQL it throws, because a shipped migration must never change — add a new version instead.
 */
export function registerPgMigration(room: string, version: number, sql: string): void {
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(room)) {
    throw new Error(`migration room "${room}" must match ^[a-z][a-z0-9_-]{0,31}$ (use your src/ room name)`);
  }
  if (!Number.isInteger(version) || version < 1) {
    throw new Error(`migration ${room} v${version}: version must be a positive integer`);
  }
  const existing = registry.get(key(room, version));
  if (existing) {
    if (existing.sql === sql) return;
    throw new Error(`migration ${room} v${version} is already registered with different SQL; add version ${version + 1} instead`);
  }
  registry.set(key(room, version), { room, version, sql });
}

/** Every registered PostgreSQL migration, each room's versions ascending. */
export function registeredPgMigrations(): PgMigration[] {
  return [...registry.values()].sort((a, b) => (a.room === b.room ? a.version - b.version : a.room < b.room ? -1 : 1));
}

/**
 * Apply pending migrations on one connection while holding the migration lock; safe to call repeatedly and from many
 * replicas at once. Returns the (room, version) pairs this call applied.
 */
export async function applyPgMigrations(
  client: pg.PoolClient | pg.Client,
  log?: Logger,
  migrations: readonly PgMigration[] = registeredPgMigrations(),
): Promise<Array<{ room: string; version: number }>> {
  const applied: Array<{ room: string; version: number }> = [];
  // Waiting for another replica's migration, or building an index on a large table, may outlast the pool's statement_timeout.
  await client.query('SET statement_timeout = 0');
  await client.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      room TEXT NOT NULL, version INTEGER NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (room, version))`);
    const done = await client.query<{ room: string; version: number }>('SELECT room, version FROM schema_migrations');
    const have = new Set(done.rows.map((r) => key(r.room, r.version)));
    for (const m of migrations) {
      if (have.has(key(m.room, m.version))) continue;
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (room, version, applied_at) VALUES ($1, $2, $3)', [m.room, m.version, Date.now()]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`PostgreSQL migration ${m.room} v${m.version} failed: ${(err as Error).message}; fix the SQL or the database and restart`);
      }
      applied.push({ room: m.room, version: m.version });
      log?.info({ room: m.room, version: m.version }, `applied PostgreSQL migration ${m.room} v${m.version}`);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK]).catch(() => {});
    await client.query('RESET statement_timeout').catch(() => {});
  }
  return applied;
}

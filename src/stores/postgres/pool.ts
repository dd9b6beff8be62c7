/**
 * The shared PostgreSQL store's connection pool: one pg.Pool per process, health for /readyz, one log line when the
 * server becomes unreachable and one when it is back. pg.Pool opens fresh connections on demand, so a restarted
 * server is used again without restarting the gateway.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { applyPgMigrations } from './migrations.js';
import { redactUrl as redactAddress } from '../address.js';

/** The URL without its password, for log lines. */
export const redactUrl = (url: string): string => redactAddress(url, 'PostgreSQL URL');

export type PgClient = pg.PoolClient;
/** A statement the server parses and plans once per connection, then runs by name (hot paths). */
export interface NamedStatement {
  name: string;
  text: string;
}
/** A pool or one connection of it (inside a transaction). */
export interface PgQueryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface OpenPostgresOptions {
  url: string;
  log: Logger;
  /** Connections per process (default 10). */
  max?: number;
  /** How often an unhealthy pool probes the server with SELECT 1 (default 1000 ms). */
  probeIntervalMs?: number;
  /** Give up a connection attempt after this long (default 3000 ms), so callers fail fast while the server is down. */
  connectTimeoutMs?: number;
  /** Server-side statement_timeout for every connection (default 10000 ms). */
  statementTimeoutMs?: number;
  /** Run pending migrations while opening (default true). */
  migrate?: boolean;
}

export interface PostgresHealth {
  ok: boolean;
  error?: string;
}

export interface Postgres {
  readonly pool: pg.Pool;
  /** Where it connects, password removed (for logs and errors). */
  readonly where: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string | NamedStatement, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /**
   * One statement committed without waiting for its WAL flush (synchronous_commit = off, on a small pool of its own):
   * for writes a later synchronous commit makes durable anyway, WAL being flushed in order (workflow step counters,
   * joins and dones; see docs/decisions/0040-workflow-writes-grouped.md). A server crash may lose the last moments of these.
   */
  queryRelaxed<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: NamedStatement, params: unknown[]): Promise<pg.QueryResult<R>>;
  /** Run `fn` inside BEGIN/COMMIT on one connection; ROLLBACK when it throws. */
  transaction<T>(fn: (client: PgClient) => Promise<T>): Promise<T>;
  /** Run `fn` in a transaction holding pg_advisory_xact_lock(name): one replica at a time across the cluster. */
  withLock<T>(name: string, fn: (client: PgClient) => Promise<T>): Promise<T>;
  /**
   * withLock, with BEGIN, the lock and the parameterless `read` sent in one round trip; `fn` gets read's rows. The
   * read runs after the lock is held, on a snapshot of its own (READ COMMITTED), so it sees what the last holder committed.
   */
  withLockReading<T, R extends pg.QueryResultRow>(name: string, read: string, fn: (client: PgClient, rows: R[]) => Promise<T>): Promise<T>;
  /** Apply migrations registered since open (stores call this before first use). */
  migrate(): Promise<Array<{ room: string; version: number }>>;
  health(): PostgresHealth;
  close(): Promise<void>;
}


/** Errors that mean "cannot reach the server", as opposed to a bad query. */
function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', '57P01', '57P02', '57P03'].includes(e.code)) return true;
    if (e.code.startsWith('08')) return true; // connection_exception class
  }
  return /timeout exceeded when trying to connect|Connection terminated|connection terminated|not queryable|Client has encountered a connection error/i.test(e?.message ?? '');
}

/** Open the pool, check that the server answers, and bring the schema up to date. Throws with what to do when it cannot. */
export async function openPostgres(opts: OpenPostgresOptions): Promise<Postgres> {
  const where = redactUrl(opts.url);
  const log = opts.log.child({ store: 'postgres' });
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    statement_timeout: opts.statementTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'switchyard',
  });
  let relaxed: pg.Pool | undefined;
  const relaxedPool = (): pg.Pool => {
    if (relaxed) return relaxed;
    relaxed = new pg.Pool({
      connectionString: opts.url,
      max: 2,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
      statement_timeout: opts.statementTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'switchyard',
      options: '-c synchronous_commit=off',
    });
    relaxed.on('error', (err) => markDown(err));
    return relaxed;
  };
  let health: PostgresHealth = { ok: true };
  let probe: NodeJS.Timeout | undefined;
  let closed = false;

  const markDown = (err: unknown) => {
    const error = (err as Error)?.message ?? String(err);
    if (health.ok) {
      log.error({ where, err: error }, `PostgreSQL at ${where} is unreachable (${error}); requests needing the shared store fail until it answers again, retrying every ${opts.probeIntervalMs ?? 1000} ms`);
    }
    health = { ok: false, error };
    startProbe();
  };
  const markUp = () => {
    if (!health.ok) log.info({ where }, `PostgreSQL at ${where} is reachable again`);
    health = { ok: true };
    if (probe) {
      clearInterval(probe);
      probe = undefined;
    }
  };
  const startProbe = () => {
    if (probe || closed) return;
    probe = setInterval(() => {
      pool.query('SELECT 1').then(markUp, (err) => {
        if (!closed) health = { ok: false, error: (err as Error).message };
      });
    }, opts.probeIntervalMs ?? 1000);
    probe.unref();
  };
  // An idle connection the server dropped (restart, failover): pg emits it here; without a listener it would crash.
  pool.on('error', (err) => markDown(err));

  const track = async <T>(p: Promise<T>): Promise<T> => {
    try {
      const v = await p;
      if (!health.ok) markUp();
      return v;
    } catch (err) {
      if (isConnectionError(err)) markDown(err);
      throw err;
    }
  };

  /**
   * pg-pool takes its error listener off a client it hands out: a connection the server ends between two statements
   * of a checkout would emit 'error' with no listener and end the process. This one marks the store down instead, and
   * the next statement on the client fails as a connection error.
   */
  const onCheckedOutError = (err: Error): void => markDown(err);
  const checkout = async (): Promise<pg.PoolClient> => {
    const client = await track(pool.connect());
    client.on('error', onCheckedOutError);
    return client;
  };
  const giveBack = (client: pg.PoolClient, broken = false): void => {
    client.off('error', onCheckedOutError);
    client.release(broken);
  };

  const transaction = async <T>(fn: (client: PgClient, begun: unknown) => Promise<T>, begin = 'BEGIN'): Promise<T> => {
    const client = await checkout();
    let broken = false;
    try {
      const begun = await client.query(begin);
      const v = await fn(client, begun);
      await client.query('COMMIT');
      return v;
    } catch (err) {
      if (isConnectionError(err)) {
        broken = true;
        markDown(err);
      } else {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
      }
      throw err;
    } finally {
      giveBack(client, broken);
    }
  };

  const db: Postgres = {
    pool,
    where,
    query: <R extends pg.QueryResultRow>(sql: string | NamedStatement, params?: unknown[]) =>
      track(typeof sql === 'string' ? pool.query<R>(sql, params) : pool.query<R>({ name: sql.name, text: sql.text, values: params })),
    queryRelaxed: <R extends pg.QueryResultRow>(sql: NamedStatement, params: unknown[]) =>
      track(relaxedPool().query<R>({ name: sql.name, text: sql.text, values: params })),
    transaction,
    withLock: (name, fn) =>
      transaction(async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
        return fn(client);
      }),
    withLockReading: <T, R extends pg.QueryResultRow>(name: string, read: string, fn: (client: PgClient, rows: R[]) => Promise<T>) =>
      transaction(
        (client, begun) => fn(client, ((begun as pg.QueryResult<R>[])[2]?.rows ?? []) as R[]),
        `BEGIN; SELECT pg_advisory_xact_lock(hashtext('${name.replace(/'/g, "''")}')); ${read}`,
      ),
    migrate: async () => {
      const client = await checkout();
      try {
        return await applyPgMigrations(client, log);
      } finally {
        giveBack(client);
      }
    },
    health: () => ({ ...health }),
    close: async () => {
      closed = true;
      if (probe) clearInterval(probe);
      probe = undefined;
      await Promise.all([pool.end(), relaxed?.end()]);
    },
  };

  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`cannot reach PostgreSQL at ${where}: ${(err as Error).message}; start it or fix store.postgres in gateway.yaml`);
  }
  if (opts.migrate !== false) {
    try {
      await db.migrate();
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
  }
  return db;
}

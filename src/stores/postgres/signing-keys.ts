/**
 * The gateway's signing keys in the shared PostgreSQL store, so every replica signs with the same current key and
 * verifies every replica's tokens. The first key is created under an advisory lock (replicas starting at once make
 * one); a rotation or removal is announced on the bus ('signing-keys') and each replica re-reads the few rows; a
 * periodic re-read covers a missed message.
 */
import type { Logger } from 'pino';
import { asSigningKey, type KeyStore, type StoredSigningKey } from '../../identity/key-store.js';
import type { ControlBus } from '../bus.js';
import { CatchUp } from './catch-up.js';
import { registerPgMigration } from './migrations.js';
import type { PgQueryable, Postgres, PostgresHealth } from './pool.js';

registerPgMigration(
  'signing-keys',
  1,
  `CREATE TABLE signing_keys (
     kid        TEXT PRIMARY KEY,
     created_at BIGINT NOT NULL,
     retired_at BIGINT,
     key        JSONB NOT NULL
   );`,
);

export interface PgKeyStoreOptions {
  db: Postgres;
  bus: ControlBus;
  log?: Pick<Logger, 'warn' | 'error'>;
  /** How often the keys are re-read when no message came (default 500 ms; a few rows). */
  catchUpMs?: number;
}

const LOCK = 'switchyard.signing-keys';
/** One short line that changes whenever a key is added, retired or removed. */
const ROWS_PRINT = `SELECT coalesce(string_agg(kid || ':' || coalesce(retired_at::text, ''), ',' ORDER BY kid), '') AS rows FROM signing_keys`;

export class PgKeyStore implements KeyStore {
  readonly where: string;
  private readonly db: Postgres;
  private readonly bus: ControlBus;
  private readonly log: Pick<Logger, 'warn' | 'error'> | undefined;
  private keys: readonly StoredSigningKey[] = [];
  /** Fingerprint of the rows last read: the list is replaced only when it changes. */
  private fingerprint = '';
  private readonly unsubscribe: () => void;
  /** A failed re-read leaves the keys in hand, which keep verifying meanwhile. */
  private readonly rereads = new CatchUp(() => this.poll());
  /** The rows' kids and retirements as of the last full read ('' before it). */
  private rowsPrint = '';

  private constructor(opts: PgKeyStoreOptions) {
    this.db = opts.db;
    this.bus = opts.bus;
    this.log = opts.log;
    this.where = `PostgreSQL at ${opts.db.where}`;
    this.unsubscribe = this.bus.subscribe('signing-keys', () => void this.reload());
  }

  static async open(opts: PgKeyStoreOptions): Promise<PgKeyStore> {
    await opts.db.migrate();
    const store = new PgKeyStore(opts);
    try {
      await store.read(opts.db);
    } catch (err) {
      store.unsubscribe();
      throw err;
    }
    store.rereads.every(opts.catchUpMs ?? 500);
    return store;
  }

  list(): readonly StoredSigningKey[] {
    return this.keys;
  }

  /** The copy is kept current by the bus and the timer; nothing to do synchronously. */
  refresh(): void {}

  async createFirst(generate: () => Promise<StoredSigningKey>): Promise<void> {
    const created = await this.db.withLock(LOCK, async (c) => {
      const current = await c.query('SELECT 1 FROM signing_keys WHERE retired_at IS NULL LIMIT 1');
      if (current.rowCount) return false;
      const key = await generate();
      await c.query('INSERT INTO signing_keys (kid, created_at, retired_at, key) VALUES ($1, $2, NULL, $3)', [key.kid, key.createdAt, JSON.stringify(key)]);
      return true;
    });
    await this.read(this.db);
    if (created) await this.announce('created');
  }

  async rotate(fresh: StoredSigningKey, now: number): Promise<string[]> {
    const retired = await this.db.withLock(LOCK, async (c) => {
      await c.query('INSERT INTO signing_keys (kid, created_at, retired_at, key) VALUES ($1, $2, NULL, $3)', [fresh.kid, fresh.createdAt, JSON.stringify(fresh)]);
      const r = await c.query<{ kid: string }>(
        `UPDATE signing_keys SET retired_at = $2, key = jsonb_set(key, '{retiredAt}', to_jsonb($2::bigint))
         WHERE retired_at IS NULL AND kid <> $1 RETURNING kid`,
        [fresh.kid, now],
      );
      return r.rows.map((row) => row.kid);
    });
    await this.read(this.db);
    await this.announce('rotated');
    return retired;
  }

  async remove(kids: readonly string[]): Promise<void> {
    if (kids.length === 0) return;
    await this.db.query('DELETE FROM signing_keys WHERE kid = ANY($1::text[]) AND retired_at IS NOT NULL', [[...kids]]);
    await this.read(this.db);
    await this.announce('removed');
  }

  /** Re-read the keys now (the bus and the timer call this). */
  reload(): Promise<void> {
    return this.rereads.now();
  }

  /** The shared store's reachability, for /readyz. */
  health(): PostgresHealth {
    return this.db.health();
  }

  async close(): Promise<void> {
    const reading = this.rereads.stop();
    this.unsubscribe();
    await reading;
  }

  /**
   * The periodic re-read (every catchUpMs on every replica) asks for one short line naming the rows; the keys
   * themselves are read only when it differs from the last one read. A write here reads them at once.
   */
  private async poll(): Promise<void> {
    const { rows } = await this.db.query<{ rows: string }>(ROWS_PRINT);
    if (rows[0]!.rows !== this.rowsPrint) await this.read(this.db);
  }

  private async read(q: PgQueryable): Promise<void> {
    const print = await q.query<{ rows: string }>(ROWS_PRINT);
    this.rowsPrint = print.rows[0]!.rows;
    const { rows } = await q.query<{ kid: string; key: unknown }>('SELECT kid, key FROM signing_keys ORDER BY created_at DESC, kid');
    const keys: StoredSigningKey[] = [];
    for (const r of rows) {
      const k = asSigningKey(r.key);
      if (k) keys.push(k);
      else this.log?.warn({ kid: r.kid }, 'a signing_keys row is not a usable ES256 key; it is ignored');
    }
    const fingerprint = keys.map((k) => `${k.kid}:${k.retiredAt ?? ''}`).join(',');
    if (fingerprint !== this.fingerprint) {
      this.fingerprint = fingerprint;
      this.keys = keys;
    }
  }

  private async announce(change: string): Promise<void> {
    try {
      await this.bus.publish('signing-keys', { change });
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'could not announce a signing key change; other replicas re-read within a second');
    }
  }
}

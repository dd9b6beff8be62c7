/**
 * The gateway's signing keys in the shared PostgreSQL store, so every replica signs with the same current key and
 * verifies every replica's tokens. The first key is created under an advisory lock (replicas starting at once make
 * one); a rotation or removal is announced on the bus ('signing-keys') and each replica re-reads the few rows; a
 * periodic re-read covers a missed message.
 */
import type { Logger } from 'pino';
import { asSigningKey, type KeyStore, type StoredSigningKey } from '../../identity/key-store.js';
import type { ControlBus } from '../bus.js';
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

export class PgKeyStore implements KeyStore {
  readonly where: string;
  private readonly db: Postgres;
  private readonly bus: ControlBus;
  private readonly log: Pick<Logger, 'warn' | 'error'> | undefined;
  private keys: readonly StoredSigningKey[] = [];
  /** Fingerprint of the rows last read: the list is replaced only when it changes. */
  private fingerprint = '';
  private readonly unsubscribe: () => void;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private closed = false;

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
    store.timer = setInterval(() => void store.reload(), opts.catchUpMs ?? 500);
    store.timer.unref();
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
    if (this.closed) return Promise.resolve();
    this.reading ??= this.read(this.db)
      .catch(() => {
        // The pool logs the outage and /readyz shows it; the keys in hand keep verifying meanwhile.
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /** The shared store's reachability, for /readyz. */
  health(): PostgresHealth {
    return this.db.health();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe();
    await this.reading;
  }

  private async read(q: PgQueryable): Promise<void> {
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

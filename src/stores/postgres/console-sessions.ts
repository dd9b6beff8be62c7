/**
 * Console sign-in sessions in the shared PostgreSQL store: every replica reads the same rows, so a cookie made on one
 * is accepted (with its CSRF token) on the others, and signing out or expiry holds everywhere at once. Rows hold the
 * cookie id's sha256, never the id; expired rows are swept when sessions are made.
 */
import type { ConsoleSessionRecord, ConsoleSessionStore } from '../console-sessions.js';
import { registerPgMigration } from './migrations.js';
import type { Postgres } from './pool.js';

registerPgMigration(
  'console-sessions',
  1,
  `CREATE TABLE console_sessions (
     id_hash    TEXT PRIMARY KEY,
     csrf       TEXT NOT NULL,
     admin      TEXT NOT NULL,
     expires_at BIGINT NOT NULL
   );
   CREATE INDEX console_sessions_expires ON console_sessions (expires_at);`,
);

export class PgConsoleSessions implements ConsoleSessionStore {
  readonly where: string;

  private constructor(private readonly db: Postgres) {
    this.where = `PostgreSQL at ${db.where}`;
  }

  static async open(db: Postgres): Promise<PgConsoleSessions> {
    await db.migrate();
    return new PgConsoleSessions(db);
  }

  async put(idHash: string, s: ConsoleSessionRecord): Promise<void> {
    await this.db.query('DELETE FROM console_sessions WHERE expires_at <= $1', [Date.now()]);
    await this.db.query('INSERT INTO console_sessions (id_hash, csrf, admin, expires_at) VALUES ($1, $2, $3, $4)', [idHash, s.csrf, s.admin, s.expiresAt]);
  }

  async get(idHash: string, now: number): Promise<ConsoleSessionRecord | undefined> {
    const { rows } = await this.db.query<{ csrf: string; admin: string; expires_at: string }>('SELECT csrf, admin, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2', [idHash, now]);
    const r = rows[0];
    return r ? { csrf: r.csrf, admin: r.admin, expiresAt: Number(r.expires_at) } : undefined;
  }

  async delete(idHash: string): Promise<void> {
    await this.db.query('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
  }
}

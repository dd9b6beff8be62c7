/**
 * Minted delegation tokens, revocations and slices in the gateway's SQLite database: which token was minted from which
 * (so revoking one revokes its descendants), the revoked jtis the authenticator refuses, and the calls each budgeted
 * token has spent.
 */
import type { DelegationTokenStore, MintedToken, Slice } from '../delegation.js';
import { MemorySlices } from '../memory/delegation.js';
import { TOKEN_COLUMNS, tokenFromRow, tokenValues, type TokenRow } from '../rows.js';
import { registerMigration, type Db } from './db.js';

registerMigration(
  'delegation',
  1,
  `
  CREATE TABLE IF NOT EXISTS delegation_tokens (
    jti          TEXT    PRIMARY KEY,
    parent_jti   TEXT,
    parent_node  TEXT    NOT NULL,
    workflow_id  TEXT    NOT NULL,
    agent        TEXT    NOT NULL,
    parent_agent TEXT    NOT NULL,
    depth        INTEGER NOT NULL,
    scope        TEXT,
    budget_tool_calls INTEGER,
    delegating_step   INTEGER,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS delegation_tokens_parent ON delegation_tokens (parent_jti);
  CREATE INDEX IF NOT EXISTS delegation_tokens_workflow ON delegation_tokens (workflow_id);

  -- Any jti may be revoked (a root token from an issuer too); kept until the token would have expired anyway.
  CREATE TABLE IF NOT EXISTS delegation_revoked (
    jti        TEXT    PRIMARY KEY,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER
  );
  `,
);

registerMigration(
  'delegation',
  2,
  `
  -- Tool calls spent per budgeted token, so a restart gives no slice a fresh count; kept until the token expires.
  CREATE TABLE IF NOT EXISTS delegation_slices (
    jti        TEXT    PRIMARY KEY,
    used       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
);

export type { MintedToken } from '../delegation.js';

export class SqliteDelegationTokens implements DelegationTokenStore {
  /** Revoked jtis in memory: the authenticator asks on every request. */
  readonly #revoked = new Set<string>();
  readonly #now: () => number;
  readonly #stmts;

  constructor(
    private readonly db: Db,
    opts: { now?: () => number } = {},
  ) {
    this.#now = opts.now ?? Date.now;
    this.#stmts = {
      insert: db.prepare(
        `INSERT INTO delegation_tokens (${TOKEN_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      get: db.prepare<[string], TokenRow>('SELECT * FROM delegation_tokens WHERE jti = ?'),
      isParent: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM delegation_tokens WHERE parent_jti = ? LIMIT 1'),
      // The token and every token minted from it, however deep.
      lineage: db.prepare<[string], TokenRow>(
        `WITH RECURSIVE tree(jti) AS (
           SELECT jti FROM delegation_tokens WHERE parent_jti = ?
           UNION SELECT t.jti FROM delegation_tokens t JOIN tree ON t.parent_jti = tree.jti)
         SELECT d.* FROM delegation_tokens d JOIN tree ON d.jti = tree.jti`,
      ),
      revoke: db.prepare('INSERT OR IGNORE INTO delegation_revoked (jti, revoked_at, expires_at) VALUES (?, ?, ?)'),
      live: db.prepare<[number], { jti: string }>('SELECT jti FROM delegation_revoked WHERE expires_at IS NULL OR expires_at > ?'),
      prune: db.prepare('DELETE FROM delegation_revoked WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      pruneTokens: db.prepare('DELETE FROM delegation_tokens WHERE expires_at <= ?'),
      unexpired: db.prepare<[number], TokenRow>('SELECT * FROM delegation_tokens WHERE expires_at > ?'),
    };
    const now = this.#now();
    this.#stmts.prune.run(now);
    // Expired tokens can no longer act or mint, so neither their links nor their revocations matter.
    this.#stmts.pruneTokens.run(now - 24 * 3600_000);
    for (const { jti } of this.#stmts.live.all(now)) this.#revoked.add(jti);
  }

  record(t: MintedToken): void {
    this.#stmts.insert.run(...tokenValues(t));
  }

  get(jti: string): MintedToken | undefined {
    const row = this.#stmts.get.get(jti);
    return row ? tokenFromRow(row) : undefined;
  }

  /** Whether the gateway knows this jti: minted here, or the parent of a token minted here. */
  knows(jti: string): boolean {
    return this.#stmts.get.get(jti) !== undefined || this.#stmts.isParent.get(jti) !== undefined;
  }

  /** Tokens that are neither expired nor revoked: the live children to count again after a restart. */
  liveTokens(): MintedToken[] {
    return this.#stmts.unexpired.all(this.#now()).filter((r) => !this.#revoked.has(r.jti)).map(tokenFromRow);
  }

  isRevoked(jti: string): boolean {
    return this.#revoked.has(jti);
  }

  /** The tokens minted from `jti`, at any depth. */
  descendants(jti: string): MintedToken[] {
    return this.#stmts.lineage.all(jti).map(tokenFromRow);
  }

  /** Revoke a token and everything minted from it; returns what was revoked (the token itself first). */
  revoke(jti: string): { revoked: string[]; descendants: MintedToken[] } {
    const own = this.get(jti);
    const descendants = this.descendants(jti);
    const now = this.#now();
    const run = this.db.transaction(() => {
      this.#stmts.revoke.run(jti, now, own?.expiresAt ?? null);
      for (const d of descendants) this.#stmts.revoke.run(d.jti, now, d.expiresAt);
    });
    run.immediate();
    const revoked = [jti, ...descendants.map((d) => d.jti)];
    for (const r of revoked) this.#revoked.add(r);
    return { revoked, descendants };
  }
}

/** Slices counted in memory and written through to `delegation_slices`, one statement per change. */
export class SqliteSlices extends MemorySlices {
  private readonly put;

  constructor(db: Db, opts: { now?: () => number } = {}) {
    super();
    const now = (opts.now ?? Date.now)();
    db.prepare('DELETE FROM delegation_slices WHERE expires_at <= ?').run(now);
    for (const row of db.prepare<[], { jti: string; used: number }>('SELECT jti, used FROM delegation_slices').all()) this.spent.set(row.jti, row.used);
    const put = db.prepare(
      `INSERT INTO delegation_slices (jti, used, expires_at) VALUES (?, ?, ?)
       ON CONFLICT(jti) DO UPDATE SET used = excluded.used`,
    );
    this.put = db.transaction((slices: readonly Slice[]) => {
      for (const s of slices) put.run(s.jti, this.spent.get(s.jti) ?? 0, s.expiresAt);
    });
  }

  protected override saved(slices: readonly Slice[]): void {
    this.put(slices);
  }
}

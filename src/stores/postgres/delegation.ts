/**
 * Delegation tokens and revocations in the shared PostgreSQL store. `get` and `isRevoked` run on every delegated call,
 * so each replica keeps a local copy: unexpired tokens and live revocations loaded at start, new ones heard on the
 * control bus ('delegation-token', 'revocation'), and a catch-up read every half second for a message it missed.
 */
import type { Logger } from 'pino';
import type { ControlBus, ControlMessage } from '../bus.js';
import type { DelegationTokenStore, MintedToken } from '../delegation.js';
import { TOKEN_COLUMNS as COLUMNS, tokenFromRow as fromRow, tokenValues, type TokenRow } from '../rows.js';
import { CatchUp } from './catch-up.js';
import { registerPgMigration } from './migrations.js';
import type { PgQueryable, Postgres, PostgresHealth } from './pool.js';
import { NOW_MS } from './workflows.js';

registerPgMigration(
  'delegation',
  1,
  `CREATE TABLE delegation_tokens (
     jti               TEXT PRIMARY KEY,
     parent_jti        TEXT,
     parent_node       TEXT NOT NULL,
     workflow_id       TEXT NOT NULL,
     agent             TEXT NOT NULL,
     parent_agent      TEXT NOT NULL,
     depth             INTEGER NOT NULL,
     scope             TEXT,
     budget_tool_calls INTEGER,
     delegating_step   INTEGER,
     issued_at         BIGINT NOT NULL,
     expires_at        BIGINT NOT NULL,
     recorded_at       BIGINT NOT NULL
   );
   CREATE INDEX delegation_tokens_parent ON delegation_tokens (parent_jti);
   CREATE INDEX delegation_tokens_workflow ON delegation_tokens (workflow_id);
   CREATE INDEX delegation_tokens_recorded ON delegation_tokens (recorded_at);
   CREATE INDEX delegation_tokens_expires ON delegation_tokens (expires_at);
   -- Any jti may be revoked (a root token from an issuer too); kept until the token would have expired anyway.
   CREATE TABLE delegation_revoked (
     jti        TEXT PRIMARY KEY,
     revoked_at BIGINT NOT NULL,
     expires_at BIGINT
   );
   CREATE INDEX delegation_revoked_at ON delegation_revoked (revoked_at);`,
);

export interface PgDelegationTokensOptions {
  db: Postgres;
  bus: ControlBus;
  log?: Pick<Logger, 'warn' | 'error'>;
  now?: () => number;
  /** How often the local copy re-reads recent mints and revocations (default 500 ms). */
  catchUpMs?: number;
}

/** A token as it travels on the bus: the record itself (it never changes once minted). */
function tokenFromMessage(d: Record<string, unknown>): MintedToken | undefined {
  const t = d.token as Partial<MintedToken> | undefined;
  if (!t || typeof t !== 'object') return undefined;
  const str = (v: unknown) => typeof v === 'string';
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!str(t.jti) || !str(t.parentNode) || !str(t.workflowId) || !str(t.agent) || !str(t.parentAgent) || !num(t.depth) || !num(t.issuedAt) || !num(t.expiresAt)) return undefined;
  if (t.parentJti !== undefined && !str(t.parentJti)) return undefined;
  if (t.scope !== undefined && !(Array.isArray(t.scope) && t.scope.every(str))) return undefined;
  if (t.budgetToolCalls !== undefined && !num(t.budgetToolCalls)) return undefined;
  if (t.delegatingStep !== undefined && !num(t.delegatingStep)) return undefined;
  return t as MintedToken;
}

const CATCH_UP_OVERLAP_MS = 2000;

export class PgDelegationTokens implements DelegationTokenStore {
  private readonly db: Postgres;
  private readonly bus: ControlBus;
  private readonly log: Pick<Logger, 'warn' | 'error'> | undefined;
  private readonly now: () => number;
  /** Unexpired tokens, by jti. */
  private readonly tokens = new Map<string, MintedToken>();
  /** Revoked jtis with when their token expires (Infinity when unknown). */
  private readonly revoked = new Map<string, number>();
  private readonly unsubscribe: Array<() => void>;
  private lastRead = 0;
  private readonly rereads = new CatchUp(() => this.readRecent());

  private constructor(opts: PgDelegationTokensOptions) {
    this.db = opts.db;
    this.bus = opts.bus;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.unsubscribe = [this.bus.subscribe('delegation-token', (m) => this.heardToken(m)), this.bus.subscribe('revocation', (m) => this.heardRevocation(m))];
  }

  /** Open on the shared store: prunes what expired, loads unexpired tokens and live revocations. */
  static async open(opts: PgDelegationTokensOptions): Promise<PgDelegationTokens> {
    await opts.db.migrate();
    const store = new PgDelegationTokens(opts);
    try {
      const now = store.now();
      await opts.db.query('DELETE FROM delegation_revoked WHERE expires_at IS NOT NULL AND expires_at <= $1', [now]);
      // Expired tokens can no longer act or mint, so neither their links nor their revocations matter.
      await opts.db.query('DELETE FROM delegation_tokens WHERE expires_at <= $1', [now - 24 * 3600_000]);
      const clock = await opts.db.query<{ now: string }>(`SELECT ${NOW_MS} AS now`);
      store.lastRead = Number(clock.rows[0]!.now);
      await store.loadWhere(opts.db, 'expires_at > $1', [now], 'expires_at IS NULL OR expires_at > $1', [now]);
    } catch (err) {
      for (const u of store.unsubscribe) u();
      throw err;
    }
    store.rereads.every(opts.catchUpMs ?? 500);
    return store;
  }

  /** Persist a minted token, then tell every replica; resolves once both happened, so the token is usable anywhere. */
  async record(t: MintedToken): Promise<void> {
    await this.db.query(
      `INSERT INTO delegation_tokens (${COLUMNS}, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, ${NOW_MS})`,
      tokenValues(t),
    );
    this.tokens.set(t.jti, { ...t });
    try {
      await this.bus.publish('delegation-token', { token: { ...t } });
    } catch (err) {
      this.log?.warn({ jti: t.jti, err: (err as Error).message }, 'could not announce a minted token; other replicas load it within a second');
    }
  }

  get(jti: string): MintedToken | undefined {
    const t = this.tokens.get(jti);
    if (t && t.expiresAt <= this.now()) {
      this.tokens.delete(jti);
      return undefined;
    }
    return t;
  }

  async load(jti: string): Promise<boolean> {
    if (this.tokens.has(jti)) return true;
    const { rows } = await this.db.query<TokenRow>(
      `WITH RECURSIVE up AS (
         SELECT ${COLUMNS} FROM delegation_tokens WHERE jti = $1
         UNION SELECT ${COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')} FROM delegation_tokens d JOIN up ON d.jti = up.parent_jti)
       SELECT ${COLUMNS} FROM up`,
      [jti],
    );
    for (const r of rows) if (!this.tokens.has(r.jti)) this.tokens.set(r.jti, fromRow(r));
    return this.tokens.has(jti);
  }

  async knows(jti: string): Promise<boolean> {
    if (this.tokens.has(jti)) return true;
    const { rowCount } = await this.db.query('SELECT 1 FROM delegation_tokens WHERE jti = $1 OR parent_jti = $1 LIMIT 1', [jti]);
    return (rowCount ?? 0) > 0;
  }

  async liveTokens(): Promise<MintedToken[]> {
    const { rows } = await this.db.query<TokenRow>(
      `SELECT ${COLUMNS} FROM delegation_tokens t WHERE expires_at > $1 AND NOT EXISTS (SELECT 1 FROM delegation_revoked r WHERE r.jti = t.jti)`,
      [this.now()],
    );
    return rows.map(fromRow);
  }

  isRevoked(jti: string): boolean {
    return this.revoked.has(jti);
  }

  async descendants(jti: string): Promise<MintedToken[]> {
    return this.lineage(this.db, jti);
  }

  /** Revoke a token and everything minted from it in one transaction, then tell every replica. */
  async revoke(jti: string): Promise<{ revoked: string[]; descendants: MintedToken[] }> {
    const { descendants, expiry } = await this.db.transaction(async (c) => {
      const own = await c.query<{ expires_at: string }>('SELECT expires_at FROM delegation_tokens WHERE jti = $1', [jti]);
      const found = await this.lineage(c, jti);
      const jtis = [jti, ...found.map((d) => d.jti)];
      const expires = [own.rows[0] ? Number(own.rows[0].expires_at) : null, ...found.map((d) => d.expiresAt)];
      await c.query(
        `INSERT INTO delegation_revoked (jti, revoked_at, expires_at) SELECT j, ${NOW_MS}, e FROM unnest($1::text[], $2::bigint[]) AS u(j, e)
         ON CONFLICT (jti) DO NOTHING`,
        [jtis, expires],
      );
      return { descendants: found, expiry: expires };
    });
    const revoked = [jti, ...descendants.map((d) => d.jti)];
    revoked.forEach((r, i) => this.revoked.set(r, expiry[i] ?? Infinity));
    try {
      await this.bus.publish('revocation', { jtis: revoked, expires: expiry.map((e) => e ?? null) });
    } catch (err) {
      this.log?.warn({ jti, err: (err as Error).message }, 'could not announce a revocation; other replicas refuse the token within a second');
    }
    return { revoked, descendants };
  }

  /** Re-read the mints and revocations of the last moments now (the timer does this every catchUpMs). */
  catchUp(): Promise<void> {
    return this.rereads.now();
  }

  /** The shared store's reachability, for /readyz. */
  health(): PostgresHealth {
    return this.db.health();
  }

  async close(): Promise<void> {
    const reading = this.rereads.stop();
    for (const u of this.unsubscribe) u();
    await reading;
  }

  /** A failed read leaves lastRead as it was, so the next one covers the same window. */
  private async readRecent(): Promise<void> {
    // One statement per read (it runs every catchUpMs on every replica): the clock, then both tables as JSON arrays.
    // The clock is read before the tables, so a row recorded meanwhile is read again next time, never skipped.
    const { rows } = await this.db.query<{ now: string; tokens: TokenRow[]; revoked: Array<{ jti: string; expires_at: number | null }> }>(
      `WITH clock AS MATERIALIZED (SELECT ${NOW_MS} AS now)
       SELECT clock.now,
         (SELECT coalesce(json_agg(t), '[]') FROM (SELECT ${COLUMNS} FROM delegation_tokens WHERE recorded_at >= $1) t) AS tokens,
         (SELECT coalesce(json_agg(r), '[]') FROM (SELECT jti, expires_at FROM delegation_revoked WHERE revoked_at >= $1) r) AS revoked
       FROM clock`,
      [this.lastRead - CATCH_UP_OVERLAP_MS],
    );
    const row = rows[0]!;
    for (const r of row.tokens) this.tokens.set(r.jti, fromRow(r));
    for (const r of row.revoked) this.revoked.set(r.jti, r.expires_at === null ? Infinity : Number(r.expires_at));
    this.lastRead = Number(row.now);
    this.prune();
  }

  private async loadWhere(q: PgQueryable, tokenWhere: string, tokenParams: unknown[], revokedWhere: string, revokedParams: unknown[]): Promise<void> {
    const tokens = await q.query<TokenRow>(`SELECT ${COLUMNS} FROM delegation_tokens WHERE ${tokenWhere}`, tokenParams);
    for (const r of tokens.rows) this.tokens.set(r.jti, fromRow(r));
    const revoked = await q.query<{ jti: string; expires_at: string | null }>(`SELECT jti, expires_at FROM delegation_revoked WHERE ${revokedWhere}`, revokedParams);
    for (const r of revoked.rows) this.revoked.set(r.jti, r.expires_at === null ? Infinity : Number(r.expires_at));
  }

  private async lineage(q: PgQueryable, jti: string): Promise<MintedToken[]> {
    const { rows } = await q.query<TokenRow>(
      `WITH RECURSIVE tree(jti) AS (
         SELECT jti FROM delegation_tokens WHERE parent_jti = $1
         UNION SELECT t.jti FROM delegation_tokens t JOIN tree ON t.parent_jti = tree.jti)
       SELECT ${COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')} FROM delegation_tokens d JOIN tree ON d.jti = tree.jti`,
      [jti],
    );
    return rows.map(fromRow);
  }

  /** Drop expired tokens and revocations of expired tokens from the local copy. */
  private prune(): void {
    const now = this.now();
    for (const [jti, t] of this.tokens) if (t.expiresAt <= now) this.tokens.delete(jti);
    for (const [jti, exp] of this.revoked) if (exp <= now) this.revoked.delete(jti);
  }

  private heardToken(m: ControlMessage): void {
    const t = tokenFromMessage(m.data);
    if (!t) {
      this.log?.warn({ from: m.from }, 'ignored a malformed delegation-token message; the catch-up read covers it');
      return;
    }
    if (!this.tokens.has(t.jti)) this.tokens.set(t.jti, { ...t });
  }

  private heardRevocation(m: ControlMessage): void {
    const { jtis, expires } = m.data;
    if (!Array.isArray(jtis) || !jtis.every((j) => typeof j === 'string') || (expires !== undefined && !Array.isArray(expires))) {
      this.log?.warn({ from: m.from }, 'ignored a malformed revocation message; the catch-up read covers it');
      return;
    }
    jtis.forEach((j: string, i) => {
      const e = Array.isArray(expires) ? expires[i] : undefined;
      this.revoked.set(j, typeof e === 'number' ? e : Infinity);
    });
  }
}

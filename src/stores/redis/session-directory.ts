/**
 * The session directory in Redis: `{prefix}session:{id}` is a hash { replica, principal } with a TTL, and
 * `{prefix}replica:{id}` the replica's advertise URL with a heartbeat TTL. Commands fail fast while Redis is down
 * (no offline queue, short timeout) so a request is answered at once rather than held; the client reconnects itself.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { SessionClaim, SessionDirectory, SessionRecord } from '../sessions.js';

export interface RedisSessionDirectoryOptions {
  url: string;
  /** Default `switchyard:`. */
  keyPrefix?: string;
  replicaId?: string;
  /** Told when Redis goes away and when it is back. */
  onHealth?: (health: { ok: boolean; error?: string }) => void;
}

/** Delete a session record only when this replica holds it. */
const RELEASE = "if redis.call('HGET', KEYS[1], 'replica') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

export class RedisSessionDirectory implements SessionDirectory {
  readonly replicaId: string;
  private readonly redis: Redis;
  private state: { ok: boolean; error?: string } = { ok: false, error: 'not connected yet' };

  constructor(opts: RedisSessionDirectoryOptions) {
    this.replicaId = opts.replicaId ?? randomUUID();
    this.redis = new Redis(opts.url, {
      keyPrefix: opts.keyPrefix ?? 'switchyard:',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      connectionName: `switchyard-sessions-${this.replicaId.slice(0, 8)}`,
    });
    const report = (next: { ok: boolean; error?: string }) => {
      const changed = next.ok !== this.state.ok;
      this.state = next;
      if (changed) opts.onHealth?.(next);
    };
    this.redis.on('ready', () => report({ ok: true }));
    this.redis.on('error', (err: Error) => report({ ok: false, error: err.message }));
    this.redis.on('close', () => report({ ok: false, error: this.state.error ?? 'connection to Redis closed' }));
  }

  /** Resolves true once connected, false after timeoutMs (commands then fail until it reconnects). */
  ready(timeoutMs = 5000): Promise<boolean> {
    if (this.state.ok) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      this.redis.once('ready', onReady);
    });
  }

  async claim(claims: readonly SessionClaim[], ttlMs: number): Promise<void> {
    if (claims.length === 0) return;
    const tx = this.redis.multi();
    for (const c of claims) tx.hset(sessionKey(c.sessionId), 'replica', this.replicaId, 'principal', c.principal).pexpire(sessionKey(c.sessionId), ttlMs);
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new Error(`Redis did not record the session: ${failed?.[0]?.message ?? 'transaction aborted'}`);
  }

  async lookup(sessionId: string): Promise<SessionRecord | undefined> {
    const results = await this.redis.multi().hgetall(sessionKey(sessionId)).pttl(sessionKey(sessionId)).exec();
    if (!results) throw new Error('Redis aborted the session lookup');
    const [[e1, fields], [e2, ttl]] = results as [[Error | null, Record<string, string>], [Error | null, number]];
    if (e1 || e2) throw e1 ?? e2!;
    if (!fields.replica || !fields.principal) return undefined;
    return { replica: fields.replica, principal: fields.principal, expires: ttl > 0 ? Date.now() + ttl : Number.MAX_SAFE_INTEGER };
  }

  async release(sessionId: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, sessionKey(sessionId), this.replicaId);
  }

  async advertise(url: string, ttlMs: number): Promise<void> {
    await this.redis.set(replicaKey(this.replicaId), url, 'PX', ttlMs);
  }

  async addressOf(replica: string): Promise<string | undefined> {
    return (await this.redis.get(replicaKey(replica))) ?? undefined;
  }

  async withdraw(): Promise<void> {
    await this.redis.del(replicaKey(this.replicaId));
  }

  health(): { ok: boolean; error?: string } {
    return { ...this.state };
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect(); // not connected: nothing to flush
    }
  }
}

// Callers pass only ids the gateway made (UUIDs): a client's header never becomes a key unchecked.
const sessionKey = (id: string) => `session:${id}`;
const replicaKey = (id: string) => `replica:${id}`;

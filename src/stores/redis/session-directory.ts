/**
 * The session directory in Redis: `{prefix}session:{id}` is a hash { replica, principal } with a TTL, and
 * `{prefix}replica:{id}` the replica's advertise URL with a heartbeat TTL. Commands fail fast while Redis is down
 * (no offline queue, short timeout) so a request is answered at once rather than held; the client reconnects itself.
 * A gateway passes the RedisClient its other stores use (one connection per process); `url` opens a connection of its own.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { SessionClaim, SessionRecord, SharedSessionDirectory } from '../sessions.js';
import type { RedisClient } from './client.js';

interface DirectoryCommon {
  replicaId?: string;
  /** Told when Redis goes away and when it is back. */
  onHealth?: (health: { ok: boolean; error?: string }) => void;
}

export type RedisSessionDirectoryOptions = DirectoryCommon &
  (
    | { client: RedisClient }
    | {
        url: string;
        /** Default `switchyard:`. */
        keyPrefix?: string;
      }
  );

/** Delete a session record only when this replica holds it. */
const RELEASE = "if redis.call('HGET', KEYS[1], 'replica') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

type Health = { ok: boolean; error?: string };

export class RedisSessionDirectory implements SharedSessionDirectory {
  readonly replicaId: string;
  private readonly redis: Redis;
  private readonly prefix: string;
  /** Whether this directory opened its connection (and so closes it); a shared client is closed by its opener. */
  private readonly owned: boolean;
  private state: Health;
  private readonly listeners: Array<(h: Health) => void> = [];
  private readonly unlisten: () => void;

  constructor(opts: RedisSessionDirectoryOptions) {
    this.replicaId = opts.replicaId ?? randomUUID();
    if ('client' in opts) {
      this.redis = opts.client.redis;
      this.prefix = opts.client.keyPrefix;
      this.owned = false;
    } else {
      this.prefix = opts.keyPrefix ?? 'switchyard:';
      this.owned = true;
      this.redis = new Redis(opts.url, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: 1000,
        connectTimeout: 2000,
        retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        connectionName: `switchyard-sessions-${this.replicaId.slice(0, 8)}`,
      });
    }
    this.state = this.redis.status === 'ready' ? { ok: true } : { ok: false, error: 'not connected yet' };
    if (opts.onHealth) this.listeners.push(opts.onHealth);
    const report = (next: Health) => {
      const changed = next.ok !== this.state.ok;
      this.state = next;
      if (changed) for (const l of this.listeners) l(next);
    };
    const onReady = () => report({ ok: true });
    const onError = (err: Error) => report({ ok: false, error: err.message });
    const onClose = () => report({ ok: false, error: this.state.error ?? 'connection to Redis closed' });
    this.redis.on('ready', onReady);
    this.redis.on('error', onError);
    this.redis.on('close', onClose);
    this.unlisten = () => {
      this.redis.off('ready', onReady);
      this.redis.off('error', onError);
      this.redis.off('close', onClose);
    };
  }

  onHealth(listener: (health: Health) => void): void {
    this.listeners.push(listener);
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
    for (const c of claims) tx.hset(this.sessionKey(c.sessionId), 'replica', this.replicaId, 'principal', c.principal).pexpire(this.sessionKey(c.sessionId), ttlMs);
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new Error(`Redis did not record the session: ${failed?.[0]?.message ?? 'transaction aborted'}`);
  }

  async lookup(sessionId: string): Promise<SessionRecord | undefined> {
    const key = this.sessionKey(sessionId);
    const results = await this.redis.multi().hgetall(key).pttl(key).exec();
    if (!results) throw new Error('Redis aborted the session lookup');
    const [[e1, fields], [e2, ttl]] = results as [[Error | null, Record<string, string>], [Error | null, number]];
    if (e1 || e2) throw e1 ?? e2!;
    if (!fields.replica || !fields.principal) return undefined;
    return { replica: fields.replica, principal: fields.principal, expires: ttl > 0 ? Date.now() + ttl : Number.MAX_SAFE_INTEGER };
  }

  async release(sessionId: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.sessionKey(sessionId), this.replicaId);
  }

  async advertise(url: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.replicaKey(this.replicaId), url, 'PX', ttlMs);
  }

  async addressOf(replica: string): Promise<string | undefined> {
    return (await this.redis.get(this.replicaKey(replica))) ?? undefined;
  }

  async withdraw(): Promise<void> {
    await this.redis.del(this.replicaKey(this.replicaId));
  }

  health(): Health {
    return { ...this.state };
  }

  async close(): Promise<void> {
    this.unlisten();
    if (!this.owned) return;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect(); // not connected: nothing to flush
    }
  }

  // Callers pass only ids the gateway made (UUIDs): a client's header never becomes a key unchecked.
  private sessionKey(id: string): string {
    return `${this.prefix}session:${id}`;
  }

  private replicaKey(id: string): string {
    return `${this.prefix}replica:${id}`;
  }
}

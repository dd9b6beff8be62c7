/**
 * The Redis connection every Redis store of a process shares.
 *
 *   const client = openRedis({ url: 'redis://10.0.0.5:6379/0', keyPrefix: 'switchyard:', log, failMode: 'closed' });
 *   await client.ready();            // optional: waits for the first connection (≤ connectTimeoutMs)
 *   client.health();                 // { ok: true } or { ok: false, error } for /readyz
 *   await client.close();
 *
 * Calls fail fast while Redis is down: no offline queue, a short command timeout, and no retry of a command that
 * was in flight (a reservation must never be counted twice). The connection itself reconnects forever with a capped
 * backoff, and one log line says when Redis went away and one when it is back. Keys and channels of every store go
 * under `keyPrefix`; the stores' Lua scripts build keys from it, so this targets one Redis (or a Sentinel pair), not
 * Redis Cluster.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { redactUrl as redactAddress } from '../address.js';

/** The URL as logs may show it: no password. */
export const redactUrl = (url: string): string => redactAddress(url, 'Redis URL');

export interface RedisClientOptions {
  /** redis://[user:password@]host:port/db or rediss:// for TLS. */
  url: string;
  /** Prefix of every key and channel; default `switchyard:`. */
  keyPrefix?: string;
  log: Logger;
  /** What the gateway does while Redis is down; only shapes the log line. Default `closed`. */
  failMode?: 'closed' | 'open';
  /** A command without an answer after this long fails; default 1000. */
  commandTimeoutMs?: number;
  /** TCP connect timeout and the longest wait of a call made before the first connection; default 1000. */
  connectTimeoutMs?: number;
  /** Longest pause between reconnect attempts; default 2000. */
  maxBackoffMs?: number;
}

export interface StoreHealth {
  ok: boolean;
  error?: string;
}

/** A call refused because Redis is unreachable (or did not answer in time): the caller did not happen. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  readonly code = 'REDIS_UNAVAILABLE';
}


const CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|Connection is closed|Stream isn't writeable|Command timed out|enableOfflineQueue|max retries|MaxRetriesPerRequest|LOADING/i;
/** Errors that mean the connection itself is gone (a reconnect, and its 'ready', follow), not just a slow command. */
const CONNECTION_GONE = /ECONNRESET|EPIPE|Connection is closed|Stream isn't writeable/i;

export class RedisClient {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly where: string;
  private readonly log: Logger;
  private readonly failMode: 'closed' | 'open';
  private readonly connectTimeoutMs: number;
  private readonly options: RedisOptions;
  private readonly url: string;
  private everReady = false;
  private down = false;
  private closed = false;
  private lastError?: string;
  private readonly extra = new Set<Redis>();

  constructor(opts: RedisClientOptions) {
    checkUrl(opts.url);
    this.url = opts.url;
    this.where = redactUrl(opts.url);
    this.keyPrefix = opts.keyPrefix ?? 'switchyard:';
    this.log = opts.log;
    this.failMode = opts.failMode ?? 'closed';
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    const maxBackoff = opts.maxBackoffMs ?? 2000;
    this.options = {
      enableOfflineQueue: false,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      connectTimeout: this.connectTimeoutMs,
      // 0: a command in flight when the connection drops fails instead of running again after the reconnect.
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), maxBackoff),
      enableReadyCheck: true,
    };
    this.redis = this.connection();
    this.redis.on('ready', () => {
      this.everReady = true;
      if (this.down) this.log.info({ redis: this.where }, `Redis at ${this.where} is reachable again; shared state is in use again`);
      this.down = false;
      this.lastError = undefined;
    });
    this.redis.on('error', (err: Error) => this.wentDown(err.message));
    this.redis.on('close', () => {
      if (!this.closed) this.wentDown(this.lastError ?? 'connection closed');
    });
  }

  /** A new connection with these options and `overrides` (a subscriber needs its own); closed with this client. */
  duplicate(overrides: RedisOptions = {}): Redis {
    const r = new Redis(this.url, { ...this.options, ...overrides });
    r.on('error', () => {}); // reported once by the main connection
    this.extra.add(r);
    return r;
  }

  /** Resolves once connected (at once when it is); rejects after `timeoutMs` (default connectTimeoutMs) without a connection. */
  ready(timeoutMs = this.connectTimeoutMs): Promise<void> {
    if (this.redis.status === 'ready') return Promise.resolve();
    // Calls made before the first connection share one wait, so a burst adds one listener, not one each.
    if (timeoutMs === this.connectTimeoutMs) {
      this.firstWait ??= this.waitReady(timeoutMs).finally(() => {
        this.firstWait = undefined;
      });
      return this.firstWait;
    }
    return this.waitReady(timeoutMs);
  }

  private firstWait: Promise<void> | undefined;

  private waitReady(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        reject(this.unavailable(this.lastError ?? 'no connection yet'));
      }, timeoutMs);
      this.redis.once('ready', onReady);
    });
  }

  health(): StoreHealth {
    if (this.redis.status === 'ready' && !this.down) return { ok: true };
    return { ok: false, error: `Redis at ${this.where} is unreachable: ${this.lastError ?? this.redis.status}` };
  }

  /** Full key of a store's key `name`. */
  key(name: string): string {
    return this.keyPrefix + name;
  }

  /**
   * Run a command: at once when connected; while the very first connection is still being made, after it (at most
   * connectTimeoutMs); while Redis is down, refused at once with a RedisUnavailableError.
   */
  async call<T>(f: (r: Redis) => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') {
      if (this.closed) throw new RedisUnavailableError(`the Redis client for ${this.where} is closed`);
      if (this.everReady || this.down) throw this.unavailable(this.lastError ?? this.redis.status);
      await this.ready();
    }
    try {
      return await f(this.redis);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (CONNECTION_ERROR.test(message)) {
        // A command can fail on a dropped connection before ioredis has reported the drop: health says so from here.
        if (CONNECTION_GONE.test(message)) this.wentDown(message);
        throw this.unavailable(message);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [this.redis, ...this.extra];
    await Promise.all(all.map((r) => r.quit().catch(() => r.disconnect())));
  }

  private connection(): Redis {
    return new Redis(this.url, this.options);
  }

  private unavailable(why: string): RedisUnavailableError {
    return new RedisUnavailableError(`Redis at ${this.where} is unreachable (${why}); the call was not made: retry once Redis is back`);
  }

  private wentDown(message: string): void {
    this.lastError = message;
    if (this.down || this.closed) return;
    this.down = true;
    const doing =
      this.failMode === 'closed'
        ? 'calls are refused until it is back (state.failMode: closed)'
        : 'calls are admitted without shared limits and logged until it is back (state.failMode: open)';
    this.log.error({ redis: this.where, err: message }, `Redis at ${this.where} unreachable: ${message}; ${doing}; reconnecting`);
  }
}

function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new Error(`state.redis.url "${redactUrl(url)}" is not a URL; write it as redis://host:6379/0 (or rediss:// for TLS)`);
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new Error(`state.redis.url must start with redis:// or rediss://, not ${protocol}//; e.g. redis://host:6379/0`);
  }
}

export function openRedis(opts: RedisClientOptions): RedisClient {
  return new RedisClient(opts);
}

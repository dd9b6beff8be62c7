/**
 * Live sub-agents per delegating node in Redis, shared by every replica:
 *
 *   new RedisLiveChildren({ client, now? })
 *
 * One sorted set per node (`<prefix>kids:<node>`, member child, score its expiry); `reserve` is one Lua script that
 * drops the lapsed children, counts, and adds, so the check before signing and the count are one atomic step.
 */
import type { Redis } from 'ioredis';
import type { LiveChildrenStore } from '../live-children.js';
import type { Clock } from '../types.js';
import type { RedisClient, StoreHealth } from './client.js';

export interface RedisLiveChildrenOptions {
  client: RedisClient;
  now?: Clock;
}

// KEYS[1] node; ARGV now, child, expiresAt, max, ttl ms. Answers -1 when added, else the live count.
const RESERVE_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  return -1
end
local live = redis.call('ZCARD', KEYS[1])
if live >= tonumber(ARGV[4]) then return live end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local ttl = tonumber(ARGV[5])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return -1
`;

type ChildrenRedis = Redis & { switchyardLiveChildren(key: string, ...args: Array<string | number>): Promise<number> };
const COMMAND = 'switchyardLiveChildren';
const GRACE_MS = 60_000;

export class RedisLiveChildren implements LiveChildrenStore {
  private readonly client: RedisClient;
  private readonly now: Clock;

  constructor(opts: RedisLiveChildrenOptions) {
    this.client = opts.client;
    this.now = opts.now ?? Date.now;
    if (typeof (this.client.redis as unknown as Record<string, unknown>)[COMMAND] !== 'function') this.client.redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: RESERVE_LUA });
  }

  async reserve(parentNode: string, child: string, expiresAt: number, max: number): Promise<number | undefined> {
    if (!Number.isFinite(max)) throw new RangeError(`maxChildren must be a finite number, got ${max}; no child was recorded`);
    const now = this.now();
    // An unbounded child (Infinity) is kept until removed; Redis scores take +inf.
    const score = Number.isFinite(expiresAt) ? expiresAt : '+inf';
    const ttl = (Number.isFinite(expiresAt) ? Math.max(1000, expiresAt - now) : 30 * 86_400_000) + GRACE_MS;
    const live = await this.client.call((r) => (r as unknown as ChildrenRedis)[COMMAND](this.keyOf(parentNode), now, child, score, max, ttl));
    return live < 0 ? undefined : live;
  }

  async remove(parentNode: string, child: string): Promise<void> {
    await this.client.call((r) => r.zrem(this.keyOf(parentNode), child));
  }

  async removeNode(parentNode: string): Promise<void> {
    await this.client.call((r) => r.del(this.keyOf(parentNode)));
  }

  async count(parentNode: string): Promise<number> {
    return this.client.call((r) => r.zcount(this.keyOf(parentNode), `(${this.now()}`, '+inf'));
  }

  health(): StoreHealth {
    return this.client.health();
  }

  private keyOf(node: string): string {
    return this.client.key(`kids:${node}`);
  }
}

/**
 * Tool-call slices of budgeted delegation tokens in Redis, shared by every replica:
 *
 *   new RedisSliceStore({ client, now? })
 *
 * One hash per token (`<prefix>slice:<jti>`: `u` used, `e` expiresAt); `take` and `giveBack` are Lua scripts over all
 * the slices of a call, so of many concurrent takes on any replicas exactly `max` succeed. A slice past its token's
 * expiry counts as unused and its key expires in Redis shortly after.
 */
import type { Redis } from 'ioredis';
import type { FullSlice, Slice, SliceStore } from '../delegation.js';
import type { Clock } from '../types.js';
import type { RedisClient, StoreHealth } from './client.js';

export interface RedisSliceOptions {
  client: RedisClient;
  now?: Clock;
}

// ARGV: now, then per slice max, expiresAt, ttl. Answers { index, used } of the first full slice, or nil.
const SLICES_LUA = `
local op = ARGV[1]
local now = tonumber(ARGV[2])
local function used(i)
  local h = redis.call('HMGET', KEYS[i], 'u', 'e')
  if not h[1] or (h[2] and tonumber(h[2]) <= now) then return 0 end
  return tonumber(h[1])
end
if op == 'give' then
  for i = 1, #KEYS do
    local u = used(i)
    if u > 0 then redis.call('HSET', KEYS[i], 'u', u - 1) end
  end
  return false
end
for i = 1, #KEYS do
  local u = used(i)
  if u >= tonumber(ARGV[3 * i]) then return { i, u } end
end
if op == 'check' then return false end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'u', used(i) + 1, 'e', ARGV[3 * i + 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[3 * i + 2])
end
return false
`;

type SlicesRedis = Redis & { switchyardSlices(n: number, ...args: Array<string | number>): Promise<[number, number] | null> };
const COMMAND = 'switchyardSlices';
/** Kept a little past expiry in Redis time, so a clock a little ahead on another replica still finds it. */
const GRACE_MS = 60_000;

export class RedisSliceStore implements SliceStore {
  private readonly client: RedisClient;
  private readonly now: Clock;

  constructor(opts: RedisSliceOptions) {
    this.client = opts.client;
    this.now = opts.now ?? Date.now;
    if (typeof (this.client.redis as unknown as Record<string, unknown>)[COMMAND] !== 'function') this.client.redis.defineCommand(COMMAND, { lua: SLICES_LUA });
  }

  check(slices: readonly Slice[]): Promise<FullSlice | undefined> {
    return this.run('check', slices);
  }

  take(slices: readonly Slice[]): Promise<FullSlice | undefined> {
    return this.run('take', slices);
  }

  async giveBack(slices: readonly Slice[]): Promise<void> {
    await this.run('give', slices);
  }

  async used(jti: string): Promise<number> {
    const [u, e] = await this.client.call((r) => r.hmget(this.client.key(`slice:${jti}`), 'u', 'e'));
    if (u === null || (e !== null && Number(e) <= this.now())) return 0;
    return Number(u);
  }

  health(): StoreHealth {
    return this.client.health();
  }

  /** The client is the caller's: it closes it. */
  close(): void {}

  private async run(op: 'check' | 'take' | 'give', slices: readonly Slice[]): Promise<FullSlice | undefined> {
    if (slices.length === 0) return undefined;
    for (const s of slices) {
      if (!Number.isFinite(s.max) || !Number.isFinite(s.expiresAt)) throw new RangeError(`slice ${s.jti}: max and expiresAt must be finite numbers; nothing was taken`);
    }
    const now = this.now();
    const keys = slices.map((s) => this.client.key(`slice:${s.jti}`));
    const args: Array<string | number> = [op, now];
    for (const s of slices) args.push(s.max, s.expiresAt, Math.max(1000, s.expiresAt - now) + GRACE_MS);
    const out = await this.client.call((r) => (r as unknown as SlicesRedis)[COMMAND](keys.length, ...keys, ...args));
    if (!out) return undefined;
    return { slice: slices[out[0] - 1]!, used: out[1] };
  }
}

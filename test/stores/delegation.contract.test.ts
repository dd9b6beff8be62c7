// The delegation stores' contract, against memory and SQLite: tokens and their lineage, revocation of a token and
// everything minted from it, and slices taken atomically, given back, and (durable stores) kept across a restart.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/audit/db.js';
import type { DelegationTokenStore, MintedToken, Slice, SliceStore } from '../../src/stores/delegation.js';
import { MemoryDelegationTokens, MemorySlices } from '../../src/stores/memory/delegation.js';
import { SqliteDelegationTokens, SqliteSlices } from '../../src/stores/sqlite/delegation.js';
import { RedisSliceStore } from '../../src/stores/redis/slices.js';
import { stopTestRedis } from '../helpers/shared-stores.js';
import { MemoryControlBus } from '../../src/stores/memory/bus.js';
import { PgDelegationTokens } from '../../src/stores/postgres/delegation.js';
import { removeStoreDirs, storeDir, TestClock, type StoreFactory } from './factories.js';
import { closeRedisClients, redisClientFor, redisReady, redisSkip } from './redis-factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './postgres/databases.js';

interface Stores {
  tokens: DelegationTokenStore;
  /** Absent where slices live in another store (PostgreSQL tokens; slices are counted in Redis). */
  slices?: SliceStore;
  close(): void | Promise<void>;
}

const open: Record<string, (dir: string, clock: TestClock) => Stores | Promise<Stores>> = {
  memory: (_dir, clock) => ({ tokens: new MemoryDelegationTokens({ now: clock.now }), slices: new MemorySlices(), close() {} }),
  sqlite: (dir, clock) => {
    const db: Db = openDatabase({ dataDir: dir });
    return { tokens: new SqliteDelegationTokens(db, { now: clock.now }), slices: new SqliteSlices(db, { now: clock.now }), close: () => closeDatabase(db) };
  },
};
const factories: Array<StoreFactory<Stores>> = [
  { name: 'memory', durable: false, open: open.memory! },
  { name: 'sqlite', durable: true, open: open.sqlite! },
  // Slices in Redis beside tokens in memory (tokens are the PostgreSQL store's); their restart case is in redis-stores.test.ts.
  ...(redisSkip
    ? []
    : [{ name: 'redis slices', durable: false, open: (dir: string, clock: TestClock): Stores => ({ tokens: new MemoryDelegationTokens({ now: clock.now }), slices: new RedisSliceStore({ client: redisClientFor(dir), now: clock.now }), close() {} }) }]),
];
if (pgUnavailable) console.log(`delegation contract without postgres: ${pgUnavailable}`);
else {
  factories.push({
    name: 'postgres',
    durable: true,
    open: async (dir, clock) => {
      const db = await pgFor(dir);
      const tokens = await PgDelegationTokens.open({ db, bus: new MemoryControlBus(), now: clock.now });
      return {
        tokens,
        close: async () => {
          await tokens.close();
          await db.close();
        },
      };
    },
  });
}

beforeAll(redisReady);
afterEach(removeStoreDirs);
afterEach(closeRedisClients);
afterAll(stopTestRedis);
afterAll(dropPgDatabases);

const HOUR = 3_600_000;

describe.each(factories)('delegation stores contract: $name', (f) => {
  const setup = async () => {
    const clock = new TestClock();
    const dir = storeDir();
    const token = (jti: string, parentJti?: string, over: Partial<MintedToken> = {}): MintedToken => ({
      jti,
      parentJti,
      parentNode: parentJti ?? 'root@wf',
      workflowId: 'wf',
      agent: `agent-${jti}`,
      parentAgent: 'root',
      depth: 1,
      issuedAt: clock.t,
      expiresAt: clock.t + HOUR,
      ...over,
    });
    return { clock, dir, token, stores: await f.open(dir, clock) };
  };

  it('records tokens and walks their lineage at any depth', async () => {
    const { stores, token } = await setup();
    await stores.tokens.record(token('a', 'root', { scope: ['fs__*'], budgetToolCalls: 3, delegatingStep: 4 }));
    await stores.tokens.record(token('b', 'a'));
    await stores.tokens.record(token('c', 'b'));
    await stores.tokens.record(token('x', 'other'));
    expect(stores.tokens.get('a')).toMatchObject({ parentJti: 'root', scope: ['fs__*'], budgetToolCalls: 3, delegatingStep: 4 });
    expect(stores.tokens.get('nope')).toBeUndefined();
    expect((await stores.tokens.descendants('a')).map((t) => t.jti).sort()).toEqual(['b', 'c']);
    expect(await stores.tokens.knows('root')).toBe(true);
    expect(await stores.tokens.knows('c')).toBe(true);
    expect(await stores.tokens.knows('stranger')).toBe(false);
    await stores.close();
  });

  it('refuses to record the same jti twice', async () => {
    const { stores, token } = await setup();
    await stores.tokens.record(token('a'));
    await expect(async () => stores.tokens.record(token('a'))).rejects.toThrow();
    await stores.close();
  });

  it('revoking a token revokes everything minted from it, and only that', async () => {
    const { stores, token, clock } = await setup();
    for (const [jti, parent] of [['a', 'root'], ['b', 'a'], ['c', 'b'], ['d', 'root']] as const) await stores.tokens.record(token(jti, parent));
    const { revoked } = await stores.tokens.revoke('a');
    expect(revoked[0]).toBe('a');
    expect([...revoked].sort()).toEqual(['a', 'b', 'c']);
    expect(['a', 'b', 'c', 'd'].map((j) => stores.tokens.isRevoked(j))).toEqual([true, true, true, false]);
    clock.t += HOUR / 2;
    expect((await stores.tokens.liveTokens()).map((t) => t.jti)).toEqual(['d']);
    clock.t += HOUR;
    expect(await stores.tokens.liveTokens()).toEqual([]);
    await stores.close();
  });

  it.runIf(f.name !== 'postgres')('takes one call from every slice atomically, refusing when any slice is full', async () => {
    const { stores, clock } = await setup();
    const outer: Slice = { jti: 'outer', max: 3, expiresAt: clock.t + HOUR };
    const inner: Slice = { jti: 'inner', max: 1, expiresAt: clock.t + HOUR };
    expect(await stores.slices!.check([inner, outer])).toBeUndefined();
    expect(await stores.slices!.take([inner, outer])).toBeUndefined();
    expect(await stores.slices!.take([inner, outer])).toEqual({ slice: inner, used: 1 });
    expect(await stores.slices!.used('outer')).toBe(1);
    await stores.slices!.giveBack([inner]);
    expect(await stores.slices!.take([inner, outer])).toBeUndefined();
    expect(await stores.slices!.take([outer])).toBeUndefined();
    expect(await stores.slices!.check([outer])).toEqual({ slice: outer, used: 3 });
    expect(await stores.slices!.used('unknown')).toBe(0);
    await stores.close();
  });

  it.runIf(f.name !== 'postgres')('of 30 concurrent takes on a slice of 10, exactly 10 succeed', async () => {
    const { stores, clock } = await setup();
    const slice: Slice = { jti: 's', max: 10, expiresAt: clock.t + HOUR };
    const results = await Promise.all(Array.from({ length: 30 }, () => stores.slices!.take([slice])));
    expect(results.filter((r) => r === undefined)).toHaveLength(10);
    expect(await stores.slices!.used('s')).toBe(10);
    await stores.close();
  });

  it.runIf(f.durable)('tokens and revocations survive a restart', async () => {
    const { stores, token, clock, dir } = await setup();
    await stores.tokens.record(token('a', 'root', { budgetToolCalls: 2 }));
    await stores.tokens.record(token('b', 'a'));
    await stores.tokens.revoke('b');
    await stores.close();
    clock.t += 2000;
    const again = await f.open(dir, clock);
    expect(again.tokens.get('a')?.budgetToolCalls).toBe(2);
    expect(again.tokens.isRevoked('b')).toBe(true);
    expect(again.tokens.isRevoked('a')).toBe(false);
    await again.close();
  });

  it.runIf(f.durable && f.name !== 'postgres')('slices survive a restart; expired slices are forgotten', async () => {
    const { stores, clock, dir } = await setup();
    const slice: Slice = { jti: 'a', max: 2, expiresAt: clock.t + HOUR };
    const short: Slice = { jti: 'short', max: 5, expiresAt: clock.t + 1000 };
    await stores.slices!.take([slice, short]);
    await stores.slices!.take([slice]);
    await stores.close();

    clock.t += 2000;
    const again = await f.open(dir, clock);
    expect(await again.slices!.used('a')).toBe(2);
    expect(await again.slices!.take([slice])).toEqual({ slice, used: 2 });
    expect(await again.slices!.used('short')).toBe(0);
    await again.close();
  });
});

// The PostgreSQL stores of two replicas talking over the Redis control bus (catch-up reads slowed to a minute, so
// what arrives comes over the bus): a pause and a kill, a minted token and its revocation, a rotated signing key.
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Caller } from '../../../src/gateway/types.js';
import { GatewayKeys } from '../../../src/identity/keys.js';
import { PgDelegationTokens } from '../../../src/stores/postgres/delegation.js';
import { PgKeyStore } from '../../../src/stores/postgres/signing-keys.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import { RedisControlBus } from '../../../src/stores/redis/bus.js';
import { openRedis, type RedisClient } from '../../../src/stores/redis/client.js';
import { stopTestRedis, testRedis } from '../../helpers/shared-stores.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './databases.js';

if (pgUnavailable) console.log(`skipping PostgreSQL stores over the Redis bus: ${pgUnavailable}`);

const quiet = pino({ level: 'silent' });
const root: Caller = { agentId: 'root', principal: 'root', chain: ['root'], via: 'apikey' };
const SLOW = 60_000;
const closers: Array<() => Promise<void>> = [];

async function buses(): Promise<[RedisControlBus, RedisControlBus]> {
  const r = await testRedis();
  const make = (id: string) => {
    const client: RedisClient = openRedis({ url: r.url, keyPrefix: r.keyPrefix, log: quiet });
    const bus = new RedisControlBus({ client, replicaId: id });
    closers.push(async () => {
      await bus.close();
      await client.close();
    });
    return bus;
  };
  return [make('replica-a'), make('replica-b')];
}

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  removeStoreDirs();
});
afterAll(async () => {
  await dropPgDatabases();
  await stopTestRedis();
});

describe.skipIf(pgUnavailable)('PostgreSQL stores over the Redis control bus', () => {
  it('a pause and a kill on one replica reach the other within 1 s', async () => {
    const dir = storeDir();
    const [busA, busB] = await buses();
    const a = await PgWorkflows.open({ db: await pgFor(dir), bus: busA, catchUpMs: SLOW });
    const b = await PgWorkflows.open({ db: await pgFor(dir), bus: busB, catchUpMs: SLOW });
    closers.push(() => a.close(), () => b.close());
    await Promise.all([busA.listening(), busB.listening()]);
    const id = a.begin({ caller: root, kind: 'mcp' });
    await a.settled();
    const t0 = performance.now();
    await a.setState(id, 'paused', 'admin');
    await vi.waitFor(() => expect(b.state(id)).toBe('paused'), { timeout: 1000, interval: 2 });
    const paused = performance.now() - t0;
    await a.setState(id, 'killed', 'admin');
    await vi.waitFor(() => expect(b.state(id)).toBe('killed'), { timeout: 1000, interval: 2 });
    console.log(`over Redis: pause seen after ${paused.toFixed(1)} ms, pause+kill after ${(performance.now() - t0).toFixed(1)} ms`);
  });

  it('a token minted on one replica and then revoked there is known, then refused, on the other', async () => {
    const dir = storeDir();
    const [busA, busB] = await buses();
    const a = await PgDelegationTokens.open({ db: await pgFor(dir), bus: busA, catchUpMs: SLOW });
    const b = await PgDelegationTokens.open({ db: await pgFor(dir), bus: busB, catchUpMs: SLOW });
    closers.push(() => a.close(), () => b.close());
    await Promise.all([busA.listening(), busB.listening()]);
    const now = Date.now();
    const t0 = performance.now();
    await a.record({ jti: 't1', parentNode: 'root@wf', workflowId: 'wf', agent: 'child', parentAgent: 'root', depth: 1, budgetToolCalls: 3, issuedAt: now, expiresAt: now + 600_000 });
    await vi.waitFor(() => expect(b.get('t1')?.budgetToolCalls).toBe(3), { timeout: 1000, interval: 1 });
    const minted = performance.now() - t0;
    await a.revoke('t1');
    await vi.waitFor(() => expect(b.isRevoked('t1')).toBe(true), { timeout: 1000, interval: 1 });
    console.log(`over Redis: minted token known after ${minted.toFixed(1)} ms, revocation after ${(performance.now() - t0).toFixed(1)} ms`);
  });

  it('a key rotated on one replica signs on the other within 1 s', async () => {
    const dir = storeDir();
    const [busA, busB] = await buses();
    const sa = await PgKeyStore.open({ db: await pgFor(dir), bus: busA, catchUpMs: SLOW });
    const sb = await PgKeyStore.open({ db: await pgFor(dir), bus: busB, catchUpMs: SLOW });
    closers.push(() => sa.close(), () => sb.close());
    await Promise.all([busA.listening(), busB.listening()]);
    const a = await GatewayKeys.openStore(sa);
    const b = await GatewayKeys.openStore(sb);
    expect(b.current()?.kid).toBe(a.current()?.kid);
    const kid = await a.rotate();
    await vi.waitFor(() => expect((b.refresh(), b.current()?.kid)).toBe(kid), { timeout: 1000, interval: 2 });
  });
});

// The PostgreSQL stores while their server is down and after it is back, without reopening anything: states and
// revocations keep answering from the local copy, writes fail with an error, and catch-up resumes on return.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Caller } from '../../../src/gateway/types.js';
import { PgDelegationTokens } from '../../../src/stores/postgres/delegation.js';
import { openPostgres, type Postgres } from '../../../src/stores/postgres/pool.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import { sharedStoresUnavailable, startPostgres, type ThrowawayPostgres } from '../../helpers/shared-stores.js';
import { DeafBus } from './replicas.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`skipping PostgreSQL outage tests: ${skip}`);

const root: Caller = { agentId: 'root', principal: 'root', chain: ['root'], via: 'apikey' };
describe.skipIf(skip)('PostgreSQL stores through an outage', () => {
  let server: ThrowawayPostgres;
  const pools: Postgres[] = [];
  const open = async () => {
    const db = await openPostgres({ url: server.adminUrl, log: pino({ level: 'silent' }), probeIntervalMs: 100, connectTimeoutMs: 500 });
    pools.push(db);
    return db;
  };
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    for (const p of pools) await p.close();
    await server.close();
  });

  it('serves states and revocations from the local copy while down, refuses writes, and catches up once back', async () => {
    const [dbA, dbB] = [await open(), await open()];
    const a = await PgWorkflows.open({ db: dbA, bus: new DeafBus(), catchUpMs: 100 });
    const b = await PgWorkflows.open({ db: dbB, bus: new DeafBus(), catchUpMs: 100 });
    const ta = await PgDelegationTokens.open({ db: dbA, bus: new DeafBus(), catchUpMs: 100 });
    const tb = await PgDelegationTokens.open({ db: dbB, bus: new DeafBus(), catchUpMs: 100 });
    try {
      const id = a.begin({ caller: root, kind: 'mcp', id: 'wf-outage' });
      await a.settled();
      await a.setState(id, 'paused', 'admin');
      await ta.revoke('jti-1');
      await vi.waitFor(() => expect([b.state(id), tb.isRevoked('jti-1')]).toEqual(['paused', true]), { timeout: 1000, interval: 10 });

      await server.stop();
      await expect(a.nextStep(id)).rejects.toThrow();
      await expect(a.setState(id, 'active')).rejects.toThrow();
      expect([a.state(id), b.state(id), tb.isRevoked('jti-1')]).toEqual(['paused', 'paused', true]);
      await vi.waitFor(() => expect(dbB.health().ok).toBe(false), { timeout: 2000, interval: 20 });

      await server.start();
      await vi.waitFor(() => expect(dbA.health().ok).toBe(true), { timeout: 5000, interval: 20 });
      await a.setState(id, 'active', 'resumed');
      expect(await a.nextStep(id)).toBe(1);
      await vi.waitFor(() => expect(b.state(id)).toBe('active'), { timeout: 1000, interval: 10 });
    } finally {
      for (const s of [a, b, ta, tb]) await s.close();
    }
  }, 60_000);
});

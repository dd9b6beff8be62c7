// Two delegation token stores on one PostgreSQL database, as two replicas: a token minted on one is known on the
// other, and a revocation on one is refused on the other, at once over the bus and within a second without it.
import { describe, expect, it, vi } from 'vitest';
import type { ControlBus } from '../../../src/stores/bus.js';
import type { MintedToken } from '../../../src/stores/delegation.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgDelegationTokens } from '../../../src/stores/postgres/delegation.js';
import { storeDir } from '../factories.js';
import { pgFor, pgUnavailable } from './databases.js';
import { closedAfterEach, DeafBus } from './replicas.js';

if (pgUnavailable) console.log(`skipping delegation replica tests: ${pgUnavailable}`);

const keep = closedAfterEach();
async function replica(dir: string, bus: ControlBus): Promise<PgDelegationTokens> {
  return keep(await PgDelegationTokens.open({ db: await pgFor(dir), bus }));
}
const token = (jti: string, parentJti?: string): MintedToken => ({
  jti,
  parentJti,
  parentNode: parentJti ?? 'root@wf',
  workflowId: 'wf',
  agent: `agent-${jti}`,
  parentAgent: 'root',
  depth: parentJti ? 2 : 1,
  budgetToolCalls: 5,
  issuedAt: Date.now(),
  expiresAt: Date.now() + 3_600_000,
});

describe.skipIf(pgUnavailable)('delegation tokens across replicas on PostgreSQL', () => {
  it('a token minted on one replica is known on the other when record() resolves, and its revocation too', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const a = await replica(dir, bus);
    const b = await replica(dir, bus);
    await a.record(token('t1'));
    await a.record(token('t2', 't1'));
    expect(b.get('t2')).toMatchObject({ jti: 't2', parentJti: 't1', budgetToolCalls: 5 });
    const { revoked } = await b.revoke('t1');
    expect(revoked.sort()).toEqual(['t1', 't2']);
    expect([a.isRevoked('t1'), a.isRevoked('t2')]).toEqual([true, true]);
  });

  it('load() brings a token minted elsewhere and its ancestors before the announcement arrives; an unknown jti is not invented', async () => {
    const dir = storeDir();
    const a = await replica(dir, new DeafBus());
    const b = await replica(dir, new DeafBus());
    await a.record(token('root1'));
    await a.record(token('child1', 'root1'));
    expect(b.get('child1')).toBeUndefined();
    await expect(b.load('child1')).resolves.toBe(true);
    expect(b.get('child1')).toMatchObject({ jti: 'child1', parentJti: 'root1', budgetToolCalls: 5 });
    expect(b.get('root1')).toMatchObject({ jti: 'root1', budgetToolCalls: 5 });
    await expect(b.load('never-minted')).resolves.toBe(false);
    expect(b.get('never-minted')).toBeUndefined();
  });

  it('without the bus, the catch-up read brings mints and revocations within 1 s', async () => {
    const dir = storeDir();
    const a = await replica(dir, new DeafBus());
    const b = await replica(dir, new DeafBus());
    const t0 = performance.now();
    await a.record(token('t1'));
    await a.revoke('t1');
    await vi.waitFor(
      () => {
        expect(b.get('t1')?.jti).toBe('t1');
        expect(b.isRevoked('t1')).toBe(true);
      },
      { timeout: 1000, interval: 10 },
    );
    console.log(`mint + revocation seen on the other replica by catch-up after ${(performance.now() - t0).toFixed(0)} ms`);
  });

  it('a replica that starts later loads live tokens and revocations, not expired ones', async () => {
    const dir = storeDir();
    const a = await replica(dir, new DeafBus());
    await a.record(token('live'));
    await a.record({ ...token('gone'), expiresAt: Date.now() - 1 });
    await a.revoke('live');
    const late = await replica(dir, new DeafBus());
    expect(late.get('live')?.agent).toBe('agent-live');
    expect(late.get('gone')).toBeUndefined();
    expect(late.isRevoked('live')).toBe(true);
  });

  it('a malformed bus message is ignored and logged', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const warnings: unknown[] = [];
    const s = keep(await PgDelegationTokens.open({ db: await pgFor(dir), bus, log: { warn: (o: unknown) => warnings.push(o), error: () => {} } }));
    bus.publish('delegation-token', { token: { jti: 'x' } });
    bus.publish('revocation', { jtis: [1, 2] });
    expect(s.get('x')).toBeUndefined();
    expect(warnings).toHaveLength(2);
  });
});

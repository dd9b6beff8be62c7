// The periodic re-reads every replica makes (a missed bus message is caught up this way) cost one statement each:
// delegation tokens and revocations come back in one, and the signing keys are read in full only when their rows
// changed. Counted on a pool that records the statements it is asked for.
import { describe, expect, it } from 'vitest';
import { GatewayKeys } from '../../../src/identity/keys.js';
import type { MintedToken } from '../../../src/stores/delegation.js';
import { PgDelegationTokens } from '../../../src/stores/postgres/delegation.js';
import type { Postgres } from '../../../src/stores/postgres/pool.js';
import { PgKeyStore } from '../../../src/stores/postgres/signing-keys.js';
import { storeDir } from '../factories.js';
import { pgFor, pgUnavailable } from './databases.js';
import { closedAfterEach, DeafBus } from './replicas.js';

if (pgUnavailable) console.log(`skipping catch-up read tests: ${pgUnavailable}`);

const keep = closedAfterEach();
/** The pool with every statement it runs written down. */
function counted(db: Postgres): { db: Postgres; sql: string[] } {
  const sql: string[] = [];
  return { sql, db: { ...db, query: (text, params) => (sql.push(typeof text === 'string' ? text : text.text), db.query(text, params)) } };
}
/** No timer read during the test: the test asks for each read itself. */
const NEVER = 3_600_000;

describe.skipIf(pgUnavailable)('catch-up reads on PostgreSQL', () => {
  it('one statement brings mints (every field) and revocations, a known token or not', async () => {
    const dir = storeDir();
    const a = keep(await PgDelegationTokens.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: NEVER }));
    const seen = counted(await pgFor(dir));
    const b = keep(await PgDelegationTokens.open({ db: seen.db, bus: new DeafBus(), catchUpMs: NEVER }));
    const t: MintedToken = { jti: 'c1', parentJti: 'p1', parentNode: 'p1@wf', workflowId: 'wf', agent: 'child', parentAgent: 'root', depth: 2, scope: ['fs__read', 'web__*'], budgetToolCalls: 7, delegatingStep: 3, issuedAt: Date.now(), expiresAt: Date.now() + 600_000 };
    await a.record(t);
    await a.revoke('never-minted');
    expect([b.get('c1'), b.isRevoked('never-minted')]).toEqual([undefined, false]);

    seen.sql.length = 0;
    await b.catchUp();
    expect(seen.sql).toHaveLength(1);
    expect(b.get('c1')).toEqual(t);
    expect(b.isRevoked('never-minted')).toBe(true);

    seen.sql.length = 0;
    await b.catchUp();
    expect(seen.sql).toHaveLength(1);
    expect(b.get('c1')).toEqual(t);
  });

  it('signing keys: one short statement while nothing changed, the keys again once a rotation changed the rows', async () => {
    const dir = storeDir();
    const a = await GatewayKeys.openStore(keep(await PgKeyStore.open({ db: await pgFor(dir), bus: new DeafBus(), catchUpMs: NEVER })));
    const seen = counted(await pgFor(dir));
    const b = keep(await PgKeyStore.open({ db: seen.db, bus: new DeafBus(), catchUpMs: NEVER }));
    const before = b.list();
    expect(before.map((k) => k.kid)).toEqual([a.current()!.kid]);

    seen.sql.length = 0;
    await b.reload();
    expect(seen.sql).toHaveLength(1);
    expect(seen.sql[0]).not.toMatch(/SELECT kid, key/);
    expect(b.list()).toBe(before);

    const kid = await a.rotate();
    seen.sql.length = 0;
    await b.reload();
    expect(seen.sql.some((s) => /SELECT kid, key/.test(s))).toBe(true);
    expect(b.list().map((k) => [k.kid, k.retiredAt !== undefined])).toEqual([
      [kid, false],
      [before[0]!.kid, true],
    ]);

    seen.sql.length = 0;
    await b.reload();
    expect(seen.sql).toHaveLength(1);
  });
});

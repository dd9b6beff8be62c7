// Console sign-in sessions in PostgreSQL: two pools (two replicas) see the same sessions; a session signed out on one
// is gone on the other; expiry holds everywhere; the table holds the cookie id's hash, never the id.
import { afterAll, describe, expect, it } from 'vitest';
import { PgConsoleSessions } from '../../../src/stores/postgres/console-sessions.js';
import { storeDir } from '../factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './databases.js';

if (pgUnavailable) console.log(`skipping PostgreSQL console session tests: ${pgUnavailable}`);

describe.skipIf(pgUnavailable)('console sessions on PostgreSQL', () => {
  afterAll(() => dropPgDatabases());

  it('are shared between replicas, end on sign-out and at expiry, and sweep expired rows', async () => {
    const dir = storeDir();
    const [dbA, dbB] = [await pgFor(dir), await pgFor(dir)];
    const a = await PgConsoleSessions.open(dbA);
    const b = await PgConsoleSessions.open(dbB);
    const now = Date.now();
    await a.put('hash-1', { csrf: 'c1', admin: 'admin:abc', expiresAt: now + 60_000 });
    await a.put('hash-2', { csrf: 'c2', admin: 'admin:def', expiresAt: now + 1_000 });
    expect(await b.get('hash-1', now)).toEqual({ csrf: 'c1', admin: 'admin:abc', expiresAt: now + 60_000 });
    expect(await b.get('hash-2', now + 1_000)).toBeUndefined();
    expect(await b.get('unknown', now)).toBeUndefined();
    await b.delete('hash-1');
    expect(await a.get('hash-1', now)).toBeUndefined();
    // A later sign-in sweeps the expired row.
    await new Promise((r) => setTimeout(r, 1_100));
    await b.put('hash-3', { csrf: 'c3', admin: 'admin:ghi', expiresAt: Date.now() + 60_000 });
    const { rows } = await dbA.query<{ id_hash: string }>('SELECT id_hash FROM console_sessions ORDER BY id_hash');
    expect(rows.map((r) => r.id_hash)).toEqual(['hash-3']);
  });
});

/** One contract for every approvals store: memory and SQLite behave alike. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/audit/db.js';
import { argsDigest, type ApprovalRecord, type ApprovalsStore } from '../../src/stores/approvals.js';
import { MemoryApprovals } from '../../src/stores/memory/approvals.js';
import { SqliteApprovals } from '../../src/stores/sqlite/approvals.js';
import { PgApprovals } from '../../src/stores/postgres/approvals.js';
import { dropPgDatabases, pgFor, pgUnavailable } from '../stores/postgres/databases.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(dropPgDatabases);

async function postgres(): Promise<ApprovalsStore> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-approvals-'));
  const db = await pgFor(dir);
  cleanups.push(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return PgApprovals.open({ db });
}
if (pgUnavailable) console.log(`approvals store without postgres: ${pgUnavailable}`);

function sqlite(): ApprovalsStore {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-approvals-'));
  const db: Db = openDatabase({ dataDir: dir });
  cleanups.push(() => {
    closeDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  });
  return new SqliteApprovals(db);
}

function pending(id: string, args: Record<string, unknown> = { table: 'tmp_1' }, at = 1000): ApprovalRecord {
  return { id, agent: 'analyst', user: 'ann@example.com', workflowId: 'wf-1', server: 'db', tool: 'db__delete_rows', args, argsDigest: argsDigest(args), createdAt: at, expiresAt: at + 300_000, state: 'pending' };
}

const makers: Array<[string, () => ApprovalsStore | Promise<ApprovalsStore>]> = [
  ['memory', () => new MemoryApprovals()],
  ['sqlite', sqlite],
];
if (!pgUnavailable) makers.push(['postgres', postgres]);

describe.each(makers)('approvals store (%s)', (_name, make) => {
  it('keeps a pending call with its arguments in full', async () => {
    const store = await make();
    const long = { sql: `DELETE FROM t WHERE id IN (${'9,'.repeat(5000)}1)` };
    await store.create(pending('a', long));
    expect(await store.get('a')).toEqual(pending('a', long));
    expect(await store.get('missing')).toBeUndefined();
  });

  it('settles once: the first decision wins, later ones get nothing', async () => {
    const store = await make();
    await store.create(pending('a'));
    const first = await store.settle('a', 'approved', { by: 'admin:1', at: 2000, reason: 'ok' });
    expect(first).toMatchObject({ state: 'approved', decidedBy: 'admin:1', decidedAt: 2000, reason: 'ok' });
    expect(await store.settle('a', 'denied', { by: 'admin:2', at: 3000 })).toBeUndefined();
    expect(await store.get('a')).toMatchObject({ state: 'approved', decidedBy: 'admin:1' });
    expect(await store.settle('nope', 'denied', { by: 'x', at: 1 })).toBeUndefined();
  });

  it('lists newest first by state, with keyset paging', async () => {
    const store = await make();
    for (const id of ['a', 'b', 'c', 'd']) await store.create(pending(id));
    await store.settle('b', 'denied', { by: 'admin:1', at: 5 });
    expect((await store.list({ state: 'pending' })).map((r) => r.id)).toEqual(['d', 'c', 'a']);
    expect((await store.list({ state: 'decided' })).map((r) => r.id)).toEqual(['b']);
    expect((await store.list({ limit: 2 })).map((r) => r.id)).toEqual(['d', 'c']);
    expect((await store.list({ limit: 2, before: 'c' })).map((r) => r.id)).toEqual(['b', 'a']);
  });

  it('keeps arguments a JSON column would change: a NUL character, key order, a float that looks whole', async () => {
    const store = await make();
    const odd = { z: 'nul\u0000here', a: 1.5, n: 10, nested: { b: [1, 'x'], a: null } };
    await store.create(pending('a', odd));
    const back = await store.get('a');
    expect(back?.args).toEqual(odd);
    expect(argsDigest(back?.args)).toBe(argsDigest(odd));
  });

  it('refuses a second record with the same id', async () => {
    const store = await make();
    await store.create(pending('a'));
    await expect(store.create(pending('a'))).rejects.toThrow();
  });
});

describe('argsDigest', () => {
  it('is the same for the same arguments in any key order, and differs for any other value', () => {
    expect(argsDigest({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(argsDigest({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(argsDigest({ a: 1 })).not.toBe(argsDigest({ a: 2 }));
    expect(argsDigest({ a: '1' })).not.toBe(argsDigest({ a: 1 }));
    expect(argsDigest(undefined)).toBe(argsDigest({}));
  });
});

// The TaskOwnerStore contract against memory and SQLite: the first claim wins, ids are per server and kind, an
// owner handed out cannot be changed by its reader, and (durable stores) owners survive a restart.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/db.js';
import { MemoryTaskOwners } from '../../src/stores/memory/task-owners.js';
import { SqliteTaskOwners } from '../../src/stores/sqlite/task-owners.js';
import { PgTaskOwners } from '../../src/stores/postgres/task-owners.js';
import type { TaskOwnerStore } from '../../src/stores/task-owners.js';
import { removeStoreDirs, storeDir, TestClock, type StoreFactory } from './factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './postgres/databases.js';

type Opened = { store: TaskOwnerStore; close(): void | Promise<void> };
const factories: Array<StoreFactory<Opened>> = [
  { name: 'memory', durable: false, open: () => ({ store: new MemoryTaskOwners(), close() {} }) },
  {
    name: 'sqlite',
    durable: true,
    open: (dir, clock) => {
      const db = openDatabase({ dataDir: dir });
      return { store: new SqliteTaskOwners(db, { now: clock.now }), close: () => closeDatabase(db) };
    },
  },
];
if (pgUnavailable) console.log(`TaskOwnerStore contract without postgres: ${pgUnavailable}`);
else {
  factories.push({
    name: 'postgres',
    durable: true,
    open: async (dir, clock) => {
      const db = await pgFor(dir);
      return { store: await PgTaskOwners.open({ db, now: clock.now }), close: () => db.close() };
    },
  });
}

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

const alice = { agentId: 'alice', workflowId: 'wf-a', stepNo: 1 };
const bob = { agentId: 'bob', workflowId: 'wf-b', stepNo: 9 };

describe.each(factories)('TaskOwnerStore contract: $name', (f) => {
  it('the first claim of an id wins; ids are kept apart per server and kind', async () => {
    const { store, close } = await f.open(storeDir(), new TestClock());
    await store.claim('echo', 'task', 't1', alice);
    await store.claim('echo', 'task', 't1', bob);
    await store.claim('other', 'task', 't1', bob);
    expect(await store.ownerOf('echo', 'task', 't1')).toEqual(alice);
    expect(await store.ownerOf('other', 'task', 't1')).toEqual(bob);
    expect(await store.ownerOf('echo', 'context', 't1')).toBeUndefined();
    await close();
  });

  it('an owner read back is a copy: changing it changes nothing stored', async () => {
    const { store, close } = await f.open(storeDir(), new TestClock());
    await store.claim('echo', 'task', 't1', { ...alice });
    const read = await store.ownerOf('echo', 'task', 't1');
    read!.agentId = 'mallory';
    expect(await store.ownerOf('echo', 'task', 't1')).toEqual(alice);
    await close();
  });

  it.runIf(f.durable)('owners survive a restart', async () => {
    const dir = storeDir();
    const first = await f.open(dir, new TestClock());
    await first.store.claim('echo', 'context', 'c1', alice);
    await first.close();
    const again = await f.open(dir, new TestClock());
    expect(await again.store.ownerOf('echo', 'context', 'c1')).toEqual(alice);
    await again.close();
  });
});

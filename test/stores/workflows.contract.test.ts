// The WorkflowStore contract against memory and SQLite: begin and join, step numbers unique and increasing, the
// legal state changes (and the errors for the others), listeners, and (durable stores) states and step numbers
// surviving a restart.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import type { Caller, WorkflowState } from '../../src/gateway/types.js';
import { MemoryWorkflows } from '../../src/stores/memory/workflows.js';
import { MemoryControlBus } from '../../src/stores/memory/bus.js';
import { PgWorkflows } from '../../src/stores/postgres/workflows.js';
import { WorkflowRegistry } from '../../src/stores/sqlite/workflows.js';
import type { WorkflowStore } from '../../src/stores/workflows.js';
import { removeStoreDirs, storeDir, type StoreFactory } from './factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './postgres/databases.js';

type Opened = { store: WorkflowStore; close(): void | Promise<void> };
const factories: Array<StoreFactory<Opened>> = [
  { name: 'memory', durable: false, open: () => ({ store: new MemoryWorkflows(), close() {} }) },
  {
    name: 'sqlite',
    durable: true,
    open: (dir) => {
      const db = openDatabase({ dataDir: dir });
      const audit = new AuditStore(db, { flushMs: 60_000 });
      return {
        store: new WorkflowRegistry(db, audit),
        close: () => {
          audit.close();
          closeDatabase(db);
        },
      };
    },
  },
];
if (pgUnavailable) console.log(`WorkflowStore contract without postgres: ${pgUnavailable}`);
else {
  factories.push({
    name: 'postgres',
    durable: true,
    open: async (dir) => {
      const db = await pgFor(dir);
      const store = await PgWorkflows.open({ db, bus: new MemoryControlBus() });
      return {
        store,
        close: async () => {
          await store.close();
          await db.close();
        },
      };
    },
  });
}

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

const root: Caller = { agentId: 'root', principal: 'root', chain: ['root'], via: 'apikey' };
const clock = { t: 0, now: () => 0 };

describe.each(factories)('WorkflowStore contract: $name', (f) => {
  it('begins a new workflow with a fresh id, and joins an existing one by id', async () => {
    const { store, close } = await f.open(storeDir(), clock);
    const a = store.begin({ caller: root, kind: 'mcp' });
    const b = store.begin({ caller: root, kind: 'mcp' });
    expect(a).not.toBe(b);
    expect(store.state(a)).toBe('active');
    expect(store.begin({ caller: root, kind: 'a2a', id: 'wf-named' })).toBe('wf-named');
    expect(store.begin({ caller: root, kind: 'mcp', id: 'wf-named' })).toBe('wf-named');
    expect(store.state('never')).toBeUndefined();
    await close();
  });

  it('refuses a workflow id a client could use to smuggle anything', async () => {
    const { store, close } = await f.open(storeDir(), clock);
    expect(() => store.begin({ caller: root, kind: 'mcp', id: '../etc' })).toThrow(/must match/);
    await close();
  });

  it('hands out step numbers 1, 2, 3 … per workflow, starting a never-begun id implicitly', async () => {
    const { store, close } = await f.open(storeDir(), clock);
    const a = store.begin({ caller: root, kind: 'mcp' });
    expect([await store.nextStep(a), await store.nextStep(a), await store.nextStep(a)]).toEqual([1, 2, 3]);
    expect(await store.nextStep('wf-implicit')).toBe(1);
    expect(store.state('wf-implicit')).toBe('active');
    await close();
  });

  it('allows the legal state changes, tells listeners, and throws for the others', async () => {
    const { store, close } = await f.open(storeDir(), clock);
    const seen: Array<[string, WorkflowState, string | undefined]> = [];
    store.onStateChange((id, s, why) => seen.push([id, s, why]));
    const id = store.begin({ caller: root, kind: 'mcp', id: 'wf-s' });
    await store.setState(id, 'paused', 'by admin');
    await store.setState(id, 'paused');
    await store.setState(id, 'active');
    await store.setState(id, 'done', 'finished');
    // Joining a done workflow makes it active again.
    store.begin({ caller: root, kind: 'mcp', id });
    expect(store.state(id)).toBe('active');
    await store.setState(id, 'killed');
    await expect(async () => store.setState(id, 'active')).rejects.toThrow(/cannot become active/);
    await expect(async () => store.setState('nope', 'paused')).rejects.toThrow(/no workflow/);
    expect(seen.map(([, s]) => s)).toEqual(['paused', 'active', 'done', 'active', 'killed']);
    expect(seen[0]).toEqual([id, 'paused', 'by admin']);
    await close();
  });

  it.runIf(f.durable)('states and step numbers survive a restart: numbering goes on, never repeats', async () => {
    const dir = storeDir();
    const first = await f.open(dir, clock);
    const id = first.store.begin({ caller: root, kind: 'mcp', id: 'wf-r' });
    for (let i = 0; i < 5; i++) await first.store.nextStep(id);
    await first.store.setState(id, 'paused', 'hold');
    await first.close();
    const again = await f.open(dir, clock);
    expect(again.store.state(id)).toBe('paused');
    expect(await again.store.nextStep(id)).toBe(6);
    await again.close();
  });
});

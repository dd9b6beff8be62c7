// The StreamEventStore contract against memory and SQLite: ids count up per stream, replay after an id, the newest
// events kept, a dropped stream forgotten, and (durable stores) events surviving a reopen.
import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/db.js';
import { MemoryStreamEvents } from '../../src/stores/memory/stream-events.js';
import { SqliteStreamEvents } from '../../src/stores/sqlite/stream-events.js';
import type { StreamEventStore } from '../../src/stores/stream-events.js';
import { removeStoreDirs, storeDir, type SyncStoreFactory } from './factories.js';

type Opened = { store: StreamEventStore; close(): void };
const factories: Array<SyncStoreFactory<Opened, { perStream?: number }>> = [
  { name: 'memory', durable: false, open: (_dir, _clock, opts) => ({ store: new MemoryStreamEvents(opts?.perStream), close() {} }) },
  {
    name: 'sqlite',
    durable: true,
    open: (dir, _clock, opts) => {
      const db = openDatabase({ dataDir: dir });
      return { store: new SqliteStreamEvents(db, opts?.perStream), close: () => closeDatabase(db) };
    },
  },
];

afterEach(removeStoreDirs);

describe.each(factories)('StreamEventStore contract: $name', (f) => {
  const clock = { t: 0, now: () => 0 };

  it('numbers events per stream from 1 and replays those after an id, oldest first', async () => {
    const { store, close } = f.open(storeDir(), clock);
    expect(await store.append('s1', 'a')).toBe(1);
    expect(await store.append('s1', 'b')).toBe(2);
    expect(await store.append('s2', 'x')).toBe(1);
    expect(await store.append('s1', 'c')).toBe(3);
    expect(await store.after('s1', 1)).toEqual([{ id: 2, data: 'b' }, { id: 3, data: 'c' }]);
    expect(await store.after('s1', 3)).toEqual([]);
    expect(await store.after('s2', 0)).toEqual([{ id: 1, data: 'x' }]);
    expect(await store.after('unknown', 0)).toEqual([]);
    close();
  });

  it('keeps the newest events of a stream, ids still counting up', async () => {
    const { store, close } = f.open(storeDir(), clock, { perStream: 3 });
    for (let i = 1; i <= 5; i++) await store.append('s', `e${i}`);
    expect((await store.after('s', 0)).map((e) => e.id)).toEqual([3, 4, 5]);
    expect(await store.append('s', 'e6')).toBe(6);
    close();
  });

  it('forgets a dropped stream, and leaves the others', async () => {
    const { store, close } = f.open(storeDir(), clock);
    await store.append('gone', 'a');
    await store.append('kept', 'b');
    await store.drop('gone');
    expect(await store.after('gone', 0)).toEqual([]);
    expect(await store.after('kept', 0)).toHaveLength(1);
    close();
  });

  it.runIf(f.durable)('events survive a reopen and numbering continues', async () => {
    const dir = storeDir();
    const first = f.open(dir, clock);
    await first.store.append('s', 'a');
    first.close();
    const again = f.open(dir, clock);
    expect(await again.store.after('s', 0)).toEqual([{ id: 1, data: 'a' }]);
    expect(await again.store.append('s', 'b')).toBe(2);
    again.close();
  });
});

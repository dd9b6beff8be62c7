// What the PostgreSQL replica suites share: a bus that carries nothing, and stores closed after each test with the
// store dirs removed, the databases dropped after the file.
import { afterAll, afterEach } from 'vitest';
import type { ControlBus } from '../../../src/stores/bus.js';
import { removeStoreDirs } from '../factories.js';
import { dropPgDatabases } from './databases.js';

/** A bus that drops every message: the catch-up read is then the only way news travels. */
export class DeafBus implements ControlBus {
  readonly replicaId = 'deaf';
  publish(): void {}
  subscribe(): () => void {
    return () => {};
  }
  close(): void {}
}

/** Register the file's hooks; the returned function keeps a store so it is closed after the test. */
export function closedAfterEach(): <T extends { close(): Promise<void> | void }>(store: T) => T {
  const open: Array<{ close(): Promise<void> | void }> = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    removeStoreDirs();
  });
  afterAll(dropPgDatabases);
  return (store) => {
    open.push(store);
    return store;
  };
}

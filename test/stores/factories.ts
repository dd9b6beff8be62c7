/** The store implementations every contract suite runs against; a shared-store branch adds its factories here. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs: string[] = [];

/** A fresh directory, removed by removeStoreDirs() (call it from afterEach). */
export function storeDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-stores-'));
  dirs.push(d);
  return d;
}

export function removeStoreDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Epoch ms that tests move by hand. */
export class TestClock {
  constructor(public t = Date.UTC(2026, 0, 1, 12, 0, 0)) {}
  now = (): number => this.t;
}

/**
 * One implementation of a store under test: `open` builds it in `dir`; `durable` ones are opened again on the same
 * dir after `close` to check that what they hold survives a restart.
 */
export interface StoreFactory<S, O = object> {
  name: string;
  durable: boolean;
  /** Shared stores (Redis, PostgreSQL) open asynchronously. */
  open(dir: string, clock: TestClock, opts?: O): S | Promise<S>;
}

/** A factory whose stores open synchronously, so a suite holds the store itself rather than a promise of it. */
export interface SyncStoreFactory<S, O = object> extends Omit<StoreFactory<S, O>, 'open'> {
  open(dir: string, clock: TestClock, opts?: O): S;
}

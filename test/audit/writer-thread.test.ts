import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeDatabase, databasePath, openDatabase, type Db } from '../../src/audit/db.js';
import { AuditStore, type AuditStoreOptions } from '../../src/audit/store.js';
import { WorkflowRegistry } from '../../src/audit/workflows.js';
import type { Worker } from 'node:worker_threads';
import { ok, refused, removeTempDirs, step, tempDataDir } from './helpers.js';

const open: Array<{ db: Db; store: AuditStore }> = [];

function openStore(opts: AuditStoreOptions = {}, dataDir = tempDataDir()): { db: Db; store: AuditStore; dataDir: string } {
  const db = openDatabase({ dataDir, durability: opts.durability });
  const store = new AuditStore(db, opts);
  open.push({ db, store });
  return { db, store, dataDir };
}

/** The writer thread behind a store (private: the tests stop it to see the store carry on without it). */
function threadOf(store: AuditStore): Worker | undefined {
  return (store as unknown as { writer: { worker?: Worker } }).writer.worker;
}

function rows(dataDir: string): Array<{ id: number; workflow_id: string; step: number; args: string | null; prev_hash: string; hash: string }> {
  const other = new Database(databasePath(dataDir), { readonly: true });
  try {
    return other.prepare('SELECT id, workflow_id, step, args, prev_hash, hash FROM audit ORDER BY id').all() as never;
  } finally {
    other.close();
  }
}

afterEach(() => {
  for (const { db, store } of open.splice(0)) {
    store.close();
    closeDatabase(db);
  }
  removeTempDirs();
});

describe('the audit writer thread', () => {
  it('writes on its own thread by default and chains exactly as the inline writer does', () => {
    const key = Buffer.alloc(32, 3);
    const threaded = openStore({ hmacKey: key, flushMs: 60_000 });
    const inline = openStore({ hmacKey: key, flushMs: 60_000, writer: 'inline' });
    expect(threadOf(threaded.store)).toBeDefined();
    expect(threadOf(inline.store)).toBeUndefined();
    const startedAt = Date.parse('2026-05-01T10:00:00Z');
    for (const { store } of [threaded, inline]) {
      for (let i = 1; i <= 30; i++) {
        const args = { q: `caf\u00e9 ${i} \ud800`, password: 'hunter2', nested: [{ token: 'x' }, i] };
        store.record(step({ workflowId: 'wf-same', stepNo: i, startedAt: startedAt + i, args }), i % 4 === 0 ? refused('policy_denied') : ok(i * 0.25));
      }
      store.flush();
    }
    const a = rows(threaded.dataDir);
    expect(a).toHaveLength(30);
    expect(a).toEqual(rows(inline.dataDir));
    expect(a[0]!.args).toBe('{"q":"caf\u00e9 1 \\ud800","password":"[REDACTED]","nested":[{"token":"[REDACTED]"},1]}');
    expect(threaded.store.verify()).toEqual({ ok: true, records: 30, keyed: true });
  });

  it('answers strict records once the thread has committed them, and a flush hook rides in the same transaction', async () => {
    const { db, store, dataDir } = openStore({ durability: 'strict' });
    const workflows = new WorkflowRegistry(db, store);
    const id = workflows.begin({ caller: step({ workflowId: 'x', stepNo: 1 }).caller, kind: 'mcp' });
    const pending = [1, 2, 3].map(() => store.record(step({ workflowId: id, stepNo: workflows.nextStep(id) }), ok()));
    expect(rows(dataDir)).toHaveLength(0);
    await Promise.all(pending);
    expect(rows(dataDir).map((r) => r.step)).toEqual([1, 2, 3]);
    const other = new Database(databasePath(dataDir), { readonly: true });
    expect(other.prepare('SELECT step_count FROM workflows WHERE id = ?').get(id)).toEqual({ step_count: 3 });
    other.close();
  });

  it('keeps a backlog that outruns the thread to a few batches by waiting for it', () => {
    const { store, dataDir } = openStore({ flushMs: 60_000, maxBatch: 10 });
    for (let i = 1; i <= 200; i++) {
      store.record(step({ workflowId: 'wf-fast', stepNo: i }), ok());
      expect(store.queueDepth).toBeLessThanOrEqual(40);
    }
    expect(rows(dataDir).length).toBeGreaterThanOrEqual(160);
    store.flush();
    expect(rows(dataDir)).toHaveLength(200);
  });

  it('writes a record the thread cannot be handed on the main thread instead of losing it', () => {
    const { store, dataDir } = openStore({ flushMs: 60_000 });
    store.record(step({ workflowId: 'wf-odd', stepNo: 1, args: { callback: () => 1, n: 1 } as Record<string, unknown> }), ok());
    store.record(step({ workflowId: 'wf-odd', stepNo: 2 }), ok());
    store.flush();
    expect(rows(dataDir).map((r) => [r.step, r.args])).toEqual([[1, '{"n":1}'], [2, '{"q":"hello"}']]);
    expect(store.verify()).toMatchObject({ ok: true, records: 2 });
  });

  it('carries on on the main thread when the thread dies, and says so once', async () => {
    const errors: string[] = [];
    const logger = { warn: () => {}, error: (_: unknown, msg: string) => errors.push(msg) } as unknown as AuditStoreOptions['logger'];
    const { store, dataDir } = openStore({ flushMs: 20, logger });
    store.record(step({ workflowId: 'wf-d', stepNo: 1 }), ok());
    store.flush();
    await threadOf(store)!.terminate();
    store.record(step({ workflowId: 'wf-d', stepNo: 2 }), ok());
    store.record(step({ workflowId: 'wf-d', stepNo: 3 }), ok());
    await vi.waitFor(() => expect(rows(dataDir).map((r) => r.step)).toEqual([1, 2, 3]), { timeout: 5000, interval: 20 });
    expect(errors.filter((m) => /main thread/.test(m))).toHaveLength(1);
    expect(store.verify()).toMatchObject({ ok: true, records: 3 });
    expect(store.close()).toBe(0);
  });

  it('close() drains the thread; records after it are dropped and counted', () => {
    const { store, dataDir } = openStore({ flushMs: 60_000 });
    store.record(step({ workflowId: 'wf-c', stepNo: 1 }), ok());
    expect(store.close()).toBe(0);
    expect(rows(dataDir)).toHaveLength(1);
    store.record(step({ workflowId: 'wf-c', stepNo: 2 }), ok());
    expect(store.getStats()).toMatchObject({ written: 1, dropped: 1, queued: 0 });
    expect(rows(dataDir)).toHaveLength(1);
  });
});

import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { closeDatabase, databasePath } from '../../src/audit/db.js';
import { InvalidQueryError } from '../../src/audit/query.js';
import { AuditStore, type AuditStoreOptions } from '../../src/audit/store.js';
import { caller, ok, refused, step, tempDataDir } from './helpers.js';
import { openStore, readCommitted } from './stores.js';

/** Rows committed, as another connection (another process) would see them. */
function committedCount(dataDir: string): number {
  return readCommitted(dataDir, (other) => (other.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n);
}

describe('batched writer', () => {
  it('returns immediately and commits a batch in one transaction within flushMs', async () => {
    const { store, dataDir } = openStore({ flushMs: 30 });
    for (let i = 1; i <= 3; i++) expect(store.record(step({ workflowId: 'wf-1', stepNo: i }), ok())).toBeUndefined();
    expect(store.queueDepth).toBe(3);
    expect(committedCount(dataDir)).toBe(0);
    await vi.waitFor(() => expect(committedCount(dataDir)).toBe(3), { timeout: 2000, interval: 10 });
    expect(store.queueDepth).toBe(0);
    expect(store.getStats()).toMatchObject({ written: 3, flushes: 1 });
  });

  it('flushes without waiting for the timer once the queue reaches maxBatch', async () => {
    const { store, dataDir } = openStore({ flushMs: 60_000, maxBatch: 500 });
    for (let i = 1; i <= 500; i++) store.record(step({ workflowId: 'wf-big', stepNo: i }), ok());
    // Committed by the writer thread within moments, far inside the 60 s timer.
    await vi.waitFor(() => expect(committedCount(dataDir)).toBe(500), { timeout: 5000, interval: 10 });
    // The writer thread commits, then reports its stats by message: the rows can be seen a moment before the count.
    await vi.waitFor(() => expect(store.getStats()).toMatchObject({ flushes: 1 }), { timeout: 5000, interval: 10 });
    expect(store.getStats()).toMatchObject({ flushes: 1, written: 500 });
  });

  it('close() flushes what is queued', () => {
    const { store, dataDir, db } = openStore({ flushMs: 60_000 });
    store.record(step({ workflowId: 'wf-1', stepNo: 1 }), ok());
    store.close();
    closeDatabase(db);
    expect(committedCount(dataDir)).toBe(1);
  });
});

describe('strict durability', () => {
  it('resolves only after the row is committed, group-committing concurrent records', async () => {
    const { store, dataDir } = openStore({ durability: 'strict' });
    const pending = Array.from({ length: 20 }, (_, i) => store.record(step({ workflowId: 'wf-s', stepNo: i + 1 }), ok()));
    expect(committedCount(dataDir)).toBe(0);
    let firstSeen = -1;
    await (pending[0] as Promise<void>).then(() => {
      firstSeen = committedCount(dataDir);
    });
    expect(firstSeen).toBe(20);
    await Promise.all(pending);
    expect(store.getStats().flushes).toBe(1);
  });

  it('rejects records after close instead of pretending they were stored', async () => {
    const { store } = openStore({ durability: 'strict' });
    store.close();
    await expect(store.record(step({ workflowId: 'wf', stepNo: 1 }), ok())).rejects.toThrow(/closed/);
  });
});

describe('redaction', () => {
  it('never writes a secret argument value to the database file', () => {
    const { store, db, dataDir } = openStore({ redact: ['password', 'token', 'secret', 'authorization'] });
    const args = {
      user: 'bob',
      password: 'hunter2-PLAINTEXT-PW',
      nested: { apiToken: 'tok-NESTED-SECRET', list: [{ AUTHORIZATION: 'Bearer HEADER-SECRET' }, 'keep-me'] },
    };
    store.record(step({ workflowId: 'wf-r', stepNo: 1, args }), ok());
    const [record] = store.queryAudit().records;
    expect(record?.args).toEqual({
      user: 'bob',
      password: '[REDACTED]',
      nested: { apiToken: '[REDACTED]', list: [{ AUTHORIZATION: '[REDACTED]' }, 'keep-me'] },
    });
    expect(args.password).toBe('hunter2-PLAINTEXT-PW');
    store.close();
    closeDatabase(db);
    const file = databasePath(dataDir);
    const bytes = Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    expect(bytes.includes('keep-me')).toBe(true);
    for (const secret of ['hunter2-PLAINTEXT-PW', 'tok-NESTED-SECRET', 'HEADER-SECRET']) expect(bytes.includes(secret)).toBe(false);
  });
});

describe('hash chain', () => {
  function fill(store: AuditStore, n: number): void {
    for (let i = 1; i <= n; i++) store.record(step({ workflowId: 'wf-h', stepNo: i }), i % 3 === 0 ? refused('policy_denied') : ok(i * 1.5));
  }

  it('verifies an untouched trail, across reopening the store', () => {
    const dataDir = tempDataDir();
    const first = openStore({}, dataDir);
    fill(first.store, 10);
    first.store.close();
    const second = openStore({}, dataDir);
    second.store.record(step({ workflowId: 'wf-h', stepNo: 11, target: 'lone\ud800surrogate', args: { text: 'caf\u00e9 \ud83d\ude00 \ud800' } }), ok());
    expect(second.store.verify()).toEqual({ ok: true, records: 11 });
  });

  it('names exactly the record whose field was changed with SQL', () => {
    const { store, db } = openStore();
    fill(store, 10);
    store.flush();
    db.prepare("UPDATE audit SET outcome = 'ok', reason = NULL WHERE id = 6").run();
    expect(store.verify()).toMatchObject({ ok: false, records: 5, firstBroken: { id: 6, workflowId: 'wf-h', step: 6 } });
  });

  it('catches a deleted record at the one after it', () => {
    const { store, db } = openStore();
    fill(store, 10);
    store.flush();
    db.prepare('DELETE FROM audit WHERE id = 4').run();
    const result = store.verify();
    expect(result).toMatchObject({ ok: false, firstBroken: { id: 5 } });
    expect(result.ok ? '' : result.message).toMatch(/prev_hash/);
  });

  it('prunes old records behind an anchor and still verifies, then keeps chaining', () => {
    const { store } = openStore();
    const now = Date.now();
    const day = 86_400_000;
    for (let i = 1; i <= 5; i++) store.record(step({ workflowId: 'wf-old', stepNo: i, startedAt: now - 10 * day }), ok());
    store.record(step({ workflowId: 'wf-new', stepNo: 1, startedAt: now - day }), ok());
    // An old record written after a newer one stays: only a prefix by id is pruned, so the chain has no holes.
    store.record(step({ workflowId: 'wf-old', stepNo: 6, startedAt: now - 9 * day }), ok());
    store.countListCall('agent-a', 'tools/list');
    expect(store.prune(7, now)).toEqual({ deleted: 5, anchorId: 5 });
    expect(store.verify()).toEqual({ ok: true, records: 2, anchor: { lastId: 5, lastHash: expect.any(String) } });
    store.record(step({ workflowId: 'wf-new', stepNo: 2 }), ok());
    expect(store.verify()).toMatchObject({ ok: true, records: 3 });
    expect(store.prune(7, now + 30 * day)).toMatchObject({ deleted: 3, anchorId: 8 });
    expect(store.verify()).toMatchObject({ ok: true, records: 0 });
    store.record(step({ workflowId: 'wf-new', stepNo: 3 }), ok());
    expect(store.queryAudit().records[0]?.id).toBe(9);
    expect(store.verify()).toMatchObject({ ok: true, records: 1 });
  });
});

describe('queries', () => {
  function seed(store: AuditStore): void {
    const base = Date.parse('2026-03-01T00:00:00Z');
    let n = 0;
    const add = (agent: string, server: string, target: string, outcome: ReturnType<typeof ok>): void => {
      n++;
      store.record(step({ workflowId: `wf-${agent}`, stepNo: n, caller: caller(agent), server, target, startedAt: base + n * 60_000 }), outcome);
    };
    add('alpha', 'github', 'search', ok());
    add('alpha', 'github', 'create_issue', refused('policy_denied'));
    add('beta', 'jira', 'search', ok());
    add('beta', 'github', 'search', { outcome: 'error', reason: 'upstream_timeout', durationMs: 60_000 });
    add('alpha', 'jira', 'search', ok());
  }

  it('filters by agent, server, tool (plain or exposed), outcome and time', () => {
    const { store } = openStore();
    seed(store);
    const ids = (f: Parameters<AuditStore['queryAudit']>[0]): number[] => store.queryAudit(f).records.map((r) => r.id);
    expect(ids({})).toEqual([5, 4, 3, 2, 1]);
    expect(ids({ agent: 'alpha' })).toEqual([5, 2, 1]);
    expect(ids({ server: 'github', tool: 'search' })).toEqual([4, 1]);
    expect(ids({ tool: 'jira__search' })).toEqual([5, 3]);
    expect(ids({ outcome: 'refused' })).toEqual([2]);
    expect(ids({ since: Date.parse('2026-03-01T00:02:00Z'), until: Date.parse('2026-03-01T00:04:00Z') })).toEqual([4, 3, 2]);
    expect(ids({ user: 'nobody@example.com' })).toEqual([]);
    const refusal = store.queryAudit({ outcome: 'refused' }).records[0];
    expect(refusal).toMatchObject({ workflowId: 'wf-alpha', agent: 'alpha', user: 'alice@example.com', server: 'github', tool: 'create_issue', reason: 'policy_denied', chain: ['alpha'] });
    expect(refusal?.time).toBe('2026-03-01T00:02:00.000Z');
  });

  it('pages newest first with an opaque cursor', () => {
    const { store } = openStore();
    seed(store);
    const first = store.queryAudit({ limit: 2 });
    expect(first.records.map((r) => r.id)).toEqual([5, 4]);
    const second = store.queryAudit({ limit: 2, cursor: first.nextCursor ?? undefined });
    expect(second.records.map((r) => r.id)).toEqual([3, 2]);
    const third = store.queryAudit({ limit: 2, cursor: second.nextCursor ?? undefined });
    expect(third).toMatchObject({ records: [{ id: 1 }], nextCursor: null });
    expect(() => store.queryAudit({ cursor: 'not-a-cursor' })).toThrow(InvalidQueryError);
    expect(() => store.queryAudit({ limit: 0 })).toThrow(/limit/);
  });

  it('exports every match oldest first', () => {
    const { store } = openStore();
    seed(store);
    expect([...store.exportAudit({ agent: 'beta', limit: 1 })].map((r) => r.id)).toEqual([3, 4]);
  });

  it('counts list calls per agent and method instead of storing them', () => {
    const { store } = openStore({ counterFlushMs: 60_000 });
    store.countListCall('alpha', 'tools/list');
    store.countListCall('alpha', 'tools/list');
    store.countListCall('beta', 'ping');
    expect(store.callCounts()).toEqual([
      { day: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), agent: 'alpha', method: 'tools/list', count: 2 },
      { day: expect.any(String), agent: 'beta', method: 'ping', count: 1 },
    ]);
    store.countListCall('alpha', 'tools/list');
    expect(store.callCounts({ agent: 'alpha' })[0]?.count).toBe(3);
    expect(store.queryAudit().records).toEqual([]);
  });
});

describe('two writers on one database', () => {
  it('interleave their records in one chain instead of colliding on ids', () => {
    const dataDir = tempDataDir();
    const key = Buffer.alloc(32, 7);
    const a = openStore({ flushMs: 60_000, hmacKey: key }, dataDir);
    const b = openStore({ flushMs: 60_000, hmacKey: key }, dataDir);
    for (let round = 1; round <= 3; round++) {
      a.store.record(step({ workflowId: 'wf-a', stepNo: round }), ok());
      a.store.flush();
      b.store.record(step({ workflowId: 'wf-b', stepNo: round }), ok());
      b.store.record(step({ workflowId: 'wf-b', stepNo: round + 10 }), ok());
      b.store.flush();
    }
    expect(a.store.getStats()).toMatchObject({ written: 3, failedFlushes: 0 });
    expect(b.store.getStats()).toMatchObject({ written: 6, failedFlushes: 0 });
    expect(a.store.health()).toEqual({ ok: true });
    expect(a.store.verify()).toEqual({ ok: true, records: 9, keyed: true });
    expect(b.store.queryAudit({ limit: 100 }).records.map((r) => r.workflowId).reverse()).toEqual(
      ['wf-a', 'wf-b', 'wf-b', 'wf-a', 'wf-b', 'wf-b', 'wf-a', 'wf-b', 'wf-b'],
    );
  });

  it('refuses to start on a head written with another key', () => {
    const dataDir = tempDataDir();
    const a = openStore({ hmacKey: Buffer.alloc(32, 1) }, dataDir);
    a.store.record(step({ workflowId: 'wf-a', stepNo: 1 }), ok());
    a.store.flush();
    expect(() => new AuditStore(a.db, { hmacKey: Buffer.alloc(32, 2) })).toThrow(/does not match its MAC.*audit\.hmacKeyFile/);
  });
});

describe('a failing writer', () => {
  it('reports itself unhealthy while flushes fail, recovers, and counts and logs what close() could not write', () => {
    const dataDir = tempDataDir();
    const errors: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const logger = { warn: () => {}, error: (obj: Record<string, unknown>, msg: string) => errors.push({ obj, msg }) } as unknown as AuditStoreOptions['logger'];
    const { store, db } = openStore({ flushMs: 60_000, logger }, dataDir);
    db.pragma('busy_timeout = 0');
    // Another process holding the write lock.
    const other = new Database(databasePath(dataDir));
    other.prepare('BEGIN IMMEDIATE').run();
    store.record(step({ workflowId: 'wf-1', stepNo: 1 }), ok());
    store.flush();
    expect(store.health()).toMatchObject({ ok: false, error: expect.stringMatching(/locked|busy/i), queued: 1 });
    expect(store.getStats()).toMatchObject({ failedFlushes: 1, written: 0 });
    other.prepare('COMMIT').run();
    store.flush();
    expect(store.health()).toEqual({ ok: true });
    expect(committedCount(dataDir)).toBe(1);

    other.prepare('BEGIN IMMEDIATE').run();
    store.record(step({ workflowId: 'wf-1', stepNo: 2 }), ok());
    store.record(step({ workflowId: 'wf-1', stepNo: 3 }), ok());
    expect(store.close()).toBe(2);
    other.prepare('ROLLBACK').run();
    other.close();
    expect(store.getStats()).toMatchObject({ dropped: 2, queued: 0 });
    const last = errors.at(-1)!;
    expect(last.obj).toMatchObject({ unwritten: 2 });
    expect(last.msg).toMatch(/^2 audit records could not be written at shutdown and are lost .*switchyard audit verify/);
  });
});

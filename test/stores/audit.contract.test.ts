// The AuditLog contract against memory and SQLite: append, query newest first with cursors and filters, export
// oldest first, redaction, a verifiable (keyed) chain, pruning behind an anchor, call counts, and (durable stores)
// the trail surviving a restart.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/db.js';
import { InvalidQueryError } from '../../src/audit/query.js';
import { AuditStore } from '../../src/audit/store.js';
import type { AuditLog } from '../../src/stores/audit.js';
import { MemoryAuditLog } from '../../src/stores/memory/audit.js';
import { caller, ok, refused, step } from '../audit/helpers.js';
import { removeStoreDirs, storeDir, type StoreFactory } from './factories.js';
import { openPgAudit } from './postgres/audit-factory.js';
import { dropPgDatabases, pgUnavailable } from './postgres/databases.js';

type Opened = { log: AuditLog; close(): Promise<void> };
const skipPg = pgUnavailable;
if (skipPg) console.log(`skipping the PostgreSQL audit contract: ${skipPg}`);
type Opts = { hmacKey?: Buffer };
const factories: Array<StoreFactory<Opened | Promise<Opened>, Opts>> = [
  { name: 'memory', durable: false, open: (_d, _c, opts) => ({ log: new MemoryAuditLog({ hmacKey: opts?.hmacKey }), close: async () => void 0 }) },
  {
    name: 'sqlite',
    durable: true,
    open: (dir, _c, opts) => {
      const db = openDatabase({ dataDir: dir });
      const log = new AuditStore(db, { flushMs: 60_000, hmacKey: opts?.hmacKey });
      return {
        log,
        close: async () => {
          await log.close();
          closeDatabase(db);
        },
      };
    },
  },
  ...(skipPg ? [] : [{ name: 'postgres', durable: true, open: (dir: string, _c: unknown, opts?: Opts) => openPgAudit(dir, { hmacKey: opts?.hmacKey }) }]),
];

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

const clock = { t: 0, now: () => 0 };
const DAY = 86_400_000;

describe.each(factories)('AuditLog contract: $name', (f) => {
  it('pages newest first with a cursor, and exports oldest first ignoring limit and cursor', async () => {
    const { log, close } = await f.open(storeDir(), clock);
    for (let i = 1; i <= 5; i++) await log.record(step({ workflowId: 'wf', stepNo: i }), ok());
    const first = await log.queryAudit({ limit: 2 });
    expect(first.records.map((r) => r.step)).toEqual([5, 4]);
    const second = await log.queryAudit({ limit: 2, cursor: first.nextCursor! });
    expect(second.records.map((r) => r.step)).toEqual([3, 2]);
    const last = await log.queryAudit({ limit: 2, cursor: second.nextCursor! });
    expect(last.records.map((r) => r.step)).toEqual([1]);
    expect(last.nextCursor).toBeNull();
    const exported: number[] = [];
    for await (const r of log.exportAudit({ limit: 1, cursor: first.nextCursor! })) exported.push(r.step);
    expect(exported).toEqual([1, 2, 3, 4, 5]);
    await close();
  });

  it('filters by agent, outcome, tool (plain or server__tool), workflow and time', async () => {
    const { log, close } = await f.open(storeDir(), clock);
    const t0 = Date.UTC(2026, 0, 1);
    await log.record(step({ workflowId: 'wf-1', stepNo: 1, caller: caller('alice'), target: 'search', startedAt: t0 }), ok());
    await log.record(step({ workflowId: 'wf-1', stepNo: 2, caller: caller('bob'), target: 'drop', startedAt: t0 + 1000 }), refused('policy_denied'));
    await log.record(step({ workflowId: 'wf-2', stepNo: 1, caller: caller('alice'), target: 'drop', server: 'db', startedAt: t0 + 2000 }), ok());
    const steps = async (filter: Parameters<AuditLog['queryAudit']>[0]) => (await log.queryAudit(filter)).records.map((r) => `${r.workflowId}/${r.step}`);
    expect(await steps({ agent: 'alice' })).toEqual(['wf-2/1', 'wf-1/1']);
    expect(await steps({ outcome: 'refused' })).toEqual(['wf-1/2']);
    expect(await steps({ tool: 'db__drop' })).toEqual(['wf-2/1']);
    expect(await steps({ tool: 'drop' })).toEqual(['wf-2/1', 'wf-1/2']);
    expect(await steps({ workflowId: 'wf-1', since: t0 + 500 })).toEqual(['wf-1/2']);
    expect(await steps({ until: t0 })).toEqual(['wf-1/1']);
    await close();
  });

  it('refuses a bad filter with InvalidQueryError, losing nothing', async () => {
    const { log, close } = await f.open(storeDir(), clock);
    await log.record(step({ workflowId: 'wf', stepNo: 1 }), ok());
    await expect(async () => log.queryAudit({ outcome: 'maybe' as never })).rejects.toBeInstanceOf(InvalidQueryError);
    await expect(async () => log.queryAudit({ limit: 0 })).rejects.toBeInstanceOf(InvalidQueryError);
    await expect(async () => log.queryAudit({ cursor: 'garbage' })).rejects.toBeInstanceOf(InvalidQueryError);
    expect((await log.queryAudit()).records).toHaveLength(1);
    await close();
  });

  it('stores arguments redacted', async () => {
    const { log, close } = await f.open(storeDir(), clock);
    await log.record(step({ workflowId: 'wf', stepNo: 1, args: { q: 'x', password: 'hunter2', nested: { api_key: 'k' } } }), ok());
    const [r] = (await log.queryAudit()).records;
    expect(JSON.stringify(r?.args)).not.toContain('hunter2');
    expect(JSON.stringify(r?.args)).not.toMatch(/"k"/);
    expect((r?.args as { q: string }).q).toBe('x');
    await close();
  });

  it('keeps a chain that verifies, keyed when given a key', async () => {
    const { log, close } = await f.open(storeDir(), clock, { hmacKey: randomBytes(32) });
    for (let i = 1; i <= 4; i++) await log.record(step({ workflowId: 'wf', stepNo: i }), ok());
    expect(await log.verify()).toMatchObject({ ok: true, records: 4, keyed: true });
    const records = (await log.queryAudit()).records.reverse();
    for (let i = 1; i < records.length; i++) expect(records[i]!.prevHash).toBe(records[i - 1]!.hash);
    await close();
  });

  it('prunes a prefix of old records behind an anchor; the chain still verifies and goes on', async () => {
    const { log, close } = await f.open(storeDir(), clock);
    const now = Date.now();
    for (let i = 1; i <= 6; i++) await log.record(step({ workflowId: 'wf', stepNo: i, startedAt: now - (i <= 3 ? 40 : 1) * DAY }), ok());
    expect(await log.prune(30, now)).toEqual({ deleted: 3, anchorId: 3 });
    expect(await log.prune(30, now)).toEqual({ deleted: 0, anchorId: null });
    await log.record(step({ workflowId: 'wf', stepNo: 7 }), ok());
    expect(await log.verify()).toMatchObject({ ok: true, records: 4, anchor: { lastId: 3 } });
    await expect(async () => log.prune(0, now)).rejects.toThrow(RangeError);
    await close();
  });

  it('counts list calls per day, agent and method', async () => {
    const { log, close } = await f.open(storeDir(), clock);
    log.countListCall('alice', 'tools/list');
    log.countListCall('alice', 'tools/list');
    log.countListCall('bob', 'ping');
    await log.flush();
    const counts = await log.callCounts({ agent: 'alice' });
    expect(counts.map(({ agent, method, count }) => ({ agent, method, count }))).toEqual([{ agent: 'alice', method: 'tools/list', count: 2 }]);
    expect(await log.callCounts({ sinceDay: '2999-01-01' })).toEqual([]);
    await close();
  });

  it.runIf(f.durable)('the trail survives a restart and the chain goes on across it', async () => {
    const dir = storeDir();
    const first = await f.open(dir, clock);
    for (let i = 1; i <= 3; i++) await first.log.record(step({ workflowId: 'wf', stepNo: i }), ok());
    await first.close();
    const again = await f.open(dir, clock);
    await again.log.record(step({ workflowId: 'wf', stepNo: 4 }), ok());
    expect(await again.log.verify()).toMatchObject({ ok: true, records: 4 });
    expect((await again.log.queryAudit()).records.map((r) => r.step)).toEqual([4, 3, 2, 1]);
    await again.close();
  });
});

// What the console asks of every AuditLog, memory and SQLite alike: reason filter, search in arguments, refusal counts.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/db.js';
import { InvalidQueryError } from '../../src/audit/query.js';
import { AuditStore } from '../../src/audit/store.js';
import type { AuditLog } from '../../src/stores/audit.js';
import { MemoryAuditLog } from '../../src/stores/memory/audit.js';
import { caller, ok, refused, step } from '../audit/helpers.js';
import { removeStoreDirs, storeDir } from './factories.js';
import { openPgAudit } from './postgres/audit-factory.js';
import { dropPgDatabases, pgUnavailable } from './postgres/databases.js';

type Opened = { log: AuditLog; close(): Promise<void> };
const skipPg = pgUnavailable;
if (skipPg) console.log(`skipping the PostgreSQL console contract: ${skipPg}`);
const factories: Array<{ name: string; open: () => Opened | Promise<Opened> }> = [
  { name: 'memory', open: () => ({ log: new MemoryAuditLog({}), close: async () => void 0 }) },
  {
    name: 'sqlite',
    open: () => {
      const db = openDatabase({ dataDir: storeDir() });
      const log = new AuditStore(db, { flushMs: 60_000 });
      return {
        log,
        close: async () => {
          await log.close();
          closeDatabase(db);
        },
      };
    },
  },
  ...(skipPg ? [] : [{ name: 'postgres', open: () => openPgAudit(storeDir()) }]),
];

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

describe.each(factories)('AuditLog for the console: $name', (f) => {
  it('filters by reason, searches words of the arguments in order, and counts refusals without decision steps', async () => {
    const { log, close } = await f.open();
    const r = caller('root');
    const t0 = Date.now();
    await log.record(step({ workflowId: 'w', stepNo: 1, caller: r, target: 'a', args: { sql: 'DELETE FROM users WHERE id = 7' }, startedAt: t0 }), ok());
    await log.record(step({ workflowId: 'w', stepNo: 2, caller: r, target: 'b', args: { note: 'users deleted from the list' }, startedAt: t0 }), refused('policy_denied'));
    await log.record(step({ workflowId: 'w', stepNo: 3, caller: r, target: 'c', args: { text: 'x' }, startedAt: t0 }), refused('approval_denied'));
    await log.record(step({ workflowId: 'w', stepNo: 4, caller: r, target: 'c', kind: 'approval', args: { decision: 'denied' }, startedAt: t0 }), refused('approval_denied'));
    await log.record(step({ workflowId: 'w', stepNo: 5, caller: r, target: 'd', args: { text: 'old' }, startedAt: t0 - 2 * 3_600_000 }), refused('policy_denied'));
    const steps = async (filter: Parameters<AuditLog['queryAudit']>[0]) => (await log.queryAudit(filter)).records.map((x) => x.step);
    expect(await steps({ reason: 'policy_denied' })).toEqual([5, 2]);
    expect(await steps({ q: 'from users' })).toEqual([1]);
    expect(await steps({ q: 'USERS' })).toEqual([2, 1]);
    expect(await steps({ q: 'users', outcome: 'refused' })).toEqual([2]);
    expect(await steps({ q: 'nowhere' })).toEqual([]);
    await expect(async () => log.queryAudit({ q: 'x'.repeat(201) })).rejects.toBeInstanceOf(InvalidQueryError);
    const counts = await log.refusalsSince(t0 - 3_600_000);
    expect([...counts].sort((a, b) => a.reason.localeCompare(b.reason))).toEqual([
      { reason: 'approval_denied', count: 1 },
      { reason: 'policy_denied', count: 1 },
    ]);
    await close();
  });
});

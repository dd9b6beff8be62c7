// The console's reads on PostgreSQL answer what the SQLite registry answers for the same steps: workflow list and
// tree (with paging and nesting), model spend with its series; bad filters are refused the same way.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../../src/audit/db.js';
import { InvalidQueryError } from '../../../src/audit/query.js';
import { AuditStore } from '../../../src/audit/store.js';
import type { Caller, Step, StepOutcome } from '../../../src/gateway/types.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgAuditConsole } from '../../../src/stores/postgres/audit/console.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import { querySpend } from '../../../src/stores/sqlite/spend.js';
import { WorkflowRegistry } from '../../../src/stores/sqlite/workflows.js';
import { ok, refused, step } from '../../audit/helpers.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { openPgAudit } from './audit-factory.js';
import { dropPgDatabases, pgUnavailable } from './databases.js';

if (pgUnavailable) console.log(`skipping the PostgreSQL console tests: ${pgUnavailable}`);

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 30, 9);
const alice: Caller = { agentId: 'alice', principal: 'alice', user: 'alice@example.com', chain: ['alice'], via: 'apikey', agent: { team: 'blue' } as Caller['agent'] };
const bob: Caller = { agentId: 'bob', principal: 'bob', chain: ['bob'], via: 'apikey' };

function modelCall(c: Caller, workflowId: string, stepNo: number, at: number, model: string, tokens: number, cost: number, estimated = false): [Step, StepOutcome] {
  return [
    {
      ...step({ workflowId, stepNo, caller: c, target: model, server: undefined, startedAt: at }),
      kind: 'model/call',
      model: { model, provider: 'openai', upstreamModel: `${model}-up`, reserve: { tokens: 100, costUsd: 1, inputTokens: 10 }, fingerprint: `fp-${model}` },
    },
    {
      outcome: 'ok',
      durationMs: 12.5,
      tokens,
      model: { model, upstreamModel: `${model}-up`, provider: 'openai', tokens: { input: tokens - 2, output: 2, cachedInput: 1 }, costUsd: cost, ...(estimated ? { tokensEstimated: true } : {}) },
    },
  ];
}

/** The same history for both stores: workflow ids in begin order, then steps [workflow index, step, outcome]. */
function history(ids: string[]): Array<[Step, StepOutcome]> {
  const [w1, w2, w3] = ids as [string, string, string];
  return [
    [step({ workflowId: w1, stepNo: 1, caller: alice, target: 'search', startedAt: T0 }), ok()],
    [step({ workflowId: w1, stepNo: 2, parentStep: 1, caller: alice, target: 'fetch', startedAt: T0 + 1000 }), ok(4, { bytes: 999 })],
    [step({ workflowId: w1, stepNo: 3, parentStep: 1, caller: alice, target: 'drop', startedAt: T0 + 2000 }), refused('policy_denied')],
    modelCall(alice, w1, 4, T0 + 3000, 'gpt-a', 30, 0.03),
    modelCall(bob, w2, 1, T0 + HOUR + 5, 'gpt-b', 50, 0.5, true),
    modelCall(alice, w2, 2, T0 + 2 * HOUR, 'gpt-a', 10, 0.01),
    [step({ workflowId: w3, stepNo: 1, caller: bob, target: 'search', startedAt: T0 + 3 * HOUR }), ok()],
  ];
}

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

describe.skipIf(pgUnavailable)('console reads on PostgreSQL', () => {
  it('list, tree and spend answer as the SQLite registry does', async () => {
    const db = openDatabase({ dataDir: storeDir() });
    const store = new AuditStore(db, { flushMs: 60_000 });
    const registry = new WorkflowRegistry(db, store);
    const sqliteIds = [alice, bob, bob].map((c) => registry.begin({ caller: c, kind: 'mcp' }));
    for (const [s, o] of history(sqliteIds)) {
      registry.nextStep(s.workflowId);
      store.record(s, o);
    }
    store.flush();

    const { log, pg, close } = await openPgAudit(storeDir());
    const workflows = await PgWorkflows.open({ db: pg, bus: new MemoryControlBus() });
    const pgIds: string[] = [];
    for (const c of [alice, bob, bob]) {
      const id = workflows.begin({ caller: c, kind: 'mcp' });
      // begin() writes in the background; wait for it (setState to the same state does), so list order is begin order.
      await workflows.setState(id, 'active');
      pgIds.push(id);
    }
    for (const [s, o] of history(pgIds)) {
      await workflows.nextStep(s.workflowId);
      log.record(s, o);
    }
    const pgConsole = new PgAuditConsole(pg, () => log.flush());

    // Ids and start times differ between the two runs; everything else must match.
    const bare = <T extends { id: string; startedAt: string }>(w: T, ids: string[]) => ({ ...w, id: ids.indexOf(w.id), startedAt: 'now' });
    const sqliteList = registry.list({ limit: 2 });
    const pgList = await pgConsole.list({ limit: 2 });
    expect(pgList.workflows.map((w) => bare(w, pgIds))).toEqual(sqliteList.workflows.map((w) => bare(w, sqliteIds)));
    expect(pgList.workflows.map((w) => w.steps)).toEqual([1, 2]);
    const pgRest = await pgConsole.list({ limit: 2, cursor: pgList.nextCursor! });
    expect(pgRest.workflows.map((w) => pgIds.indexOf(w.id))).toEqual([0]);
    expect(pgRest.nextCursor).toBeNull();
    expect((await pgConsole.list({ agent: 'bob' })).workflows.map((w) => pgIds.indexOf(w.id))).toEqual([2, 1]);

    const sqliteTree = registry.tree(sqliteIds[0]!)!;
    const pgTree = (await pgConsole.tree(pgIds[0]!))!;
    expect(bare(pgTree, pgIds)).toEqual(bare(sqliteTree, sqliteIds));
    expect(pgTree.tree.map((n) => [n.step, (n.children ?? []).map((c) => c.step)])).toEqual([[1, [2, 3]], [4, []]]);
    expect(pgTree.steps[3]!.model).toMatchObject({ name: 'gpt-a', costUsd: 0.03, provider: 'openai', tokens: { input: 28, output: 2, cachedInput: 1 } });
    const page = (await pgConsole.tree(pgIds[0]!, { limit: 3 }))!;
    expect([page.steps.map((s) => s.step), page.nextAfterStep]).toEqual([[1, 2, 3], 3]);
    expect((await pgConsole.tree(pgIds[0]!, { afterStep: 3 }))!.steps.map((s) => s.step)).toEqual([4]);
    expect(await pgConsole.tree('no-such-workflow')).toBeUndefined();

    for (const by of ['model', 'agent', 'team'] as const) {
      for (const bucket of [undefined, 'hour', 'day'] as const) {
        const range = { from: T0, to: T0 + 4 * HOUR, bucket };
        expect(await pgConsole.spend(by, range)).toEqual(querySpend(db, by, range));
      }
    }
    const report = await pgConsole.spend('model', { from: T0, to: T0 + 4 * HOUR, bucket: 'hour' });
    expect(report.groups.map((g) => [g.key, g.calls, g.estimatedCalls])).toEqual([['gpt-b', 1, 1], ['gpt-a', 2, 0]]);
    expect(report.series!.map((s) => [s.start, s.key])).toEqual([
      [new Date(T0).toISOString(), 'gpt-a'],
      [new Date(T0 + HOUR).toISOString(), 'gpt-b'],
      [new Date(T0 + 2 * HOUR).toISOString(), 'gpt-a'],
    ]);
    expect(await pgConsole.countByState()).toEqual(registry.countByState());

    await workflows.close();
    await close();
    store.close();
    closeDatabase(db);
  });

  it('refuses a bad state, cursor or range with InvalidQueryError', async () => {
    const { pg, close } = await openPgAudit(storeDir());
    const workflows = await PgWorkflows.open({ db: pg, bus: new MemoryControlBus() });
    const pgConsole = new PgAuditConsole(pg);
    await expect(pgConsole.list({ state: 'sleepy' as never })).rejects.toBeInstanceOf(InvalidQueryError);
    await expect(pgConsole.list({ cursor: 'garbage' })).rejects.toBeInstanceOf(InvalidQueryError);
    await expect(pgConsole.list({ limit: 5000 })).rejects.toBeInstanceOf(InvalidQueryError);
    await expect(pgConsole.spend('model', { from: 10, to: 5 })).rejects.toThrow('from must not be after to');
    await expect(pgConsole.spend('model', { from: 0, to: 1000 * HOUR, bucket: 'hour' })).rejects.toThrow(/at most 800 buckets/);
    await workflows.close();
    await close();
  });
});

/** A long workflow's tree comes in keyset pages by step number; the audit search finds words in arguments. */
import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import { MAX_TREE_STEPS, WorkflowRegistry } from '../../src/audit/workflows.js';
import { InvalidQueryError } from '../../src/audit/query.js';
import { caller, ok, removeTempDirs, step, tempDataDir } from '../audit/helpers.js';

const opened: Array<{ db: Db; store: AuditStore }> = [];

function open(): { store: AuditStore; workflows: WorkflowRegistry } {
  const db = openDatabase({ dataDir: tempDataDir() });
  const store = new AuditStore(db, { flushMs: 60_000 });
  opened.push({ db, store });
  return { store, workflows: new WorkflowRegistry(db, store) };
}

afterEach(() => {
  for (const { db, store } of opened.splice(0)) {
    store.close();
    closeDatabase(db);
  }
  removeTempDirs();
});

describe('workflow tree paging', () => {
  it('answers at most MAX_TREE_STEPS steps by default, and pages on with afterStep', () => {
    const { store, workflows } = open();
    const id = workflows.begin({ caller: caller('root'), kind: 'mcp' });
    const total = MAX_TREE_STEPS + 5;
    for (let i = 0; i < total; i++) store.record(step({ workflowId: id, stepNo: workflows.nextStep(id), caller: caller('root'), target: `t${i}` }), ok(1));
    const first = workflows.tree(id)!;
    expect(first.steps).toHaveLength(MAX_TREE_STEPS);
    expect(first.nextAfterStep).toBe(MAX_TREE_STEPS);
    const rest = workflows.tree(id, { afterStep: first.nextAfterStep! })!;
    expect(rest.steps.map((s) => s.step)).toEqual([1001, 1002, 1003, 1004, 1005]);
    expect(rest.nextAfterStep).toBeNull();
    const small = workflows.tree(id, { limit: 2 })!;
    expect(small.steps.map((s) => s.step)).toEqual([1, 2]);
    expect(small.nextAfterStep).toBe(2);
  });
});

describe('audit search in arguments', () => {
  it('finds records by words of their arguments, in order, and treats query syntax as text', () => {
    const { store } = open();
    const r = caller('root');
    store.record(step({ workflowId: 'w1', stepNo: 1, caller: r, target: 'a', args: { sql: 'DELETE FROM users WHERE id = 7' } }), ok(1));
    store.record(step({ workflowId: 'w1', stepNo: 2, caller: r, target: 'b', args: { note: 'users deleted from the list' } }), ok(1));
    store.record(step({ workflowId: 'w1', stepNo: 3, caller: r, target: 'c', args: { text: 'NEAR("x" OR y)*' } }), ok(1));
    store.flush();
    expect(store.queryAudit({ q: 'from users' }).records.map((x) => x.tool)).toEqual(['a']);
    expect(store.queryAudit({ q: 'users' }).records.map((x) => x.tool)).toEqual(['b', 'a']);
    expect(store.queryAudit({ q: 'NEAR("x" OR' }).records.map((x) => x.tool)).toEqual(['c']);
    expect(store.queryAudit({ q: 'nowhere' }).records).toEqual([]);
    expect(() => store.queryAudit({ q: 'x'.repeat(201) })).toThrow(InvalidQueryError);
  });
});

describe('audit filters written for indexes', () => {
  it('keeps time bounds exact when times are out of id order', () => {
    const { store } = open();
    const r = caller('root');
    [5000, 1000, 3000, 2000].forEach((time, i) => store.record(step({ workflowId: 'w', stepNo: i + 1, caller: r, target: `t${i}`, startedAt: time }), ok(1)));
    store.flush();
    expect(store.queryAudit({ since: 2500 }).records.map((x) => x.tool)).toEqual(['t2', 't0']);
    expect(store.queryAudit({ until: 2500 }).records.map((x) => x.tool)).toEqual(['t3', 't1']);
    expect(store.queryAudit({ since: 1500, until: 3500 }).records.map((x) => x.tool)).toEqual(['t3', 't2']);
    expect(store.queryAudit({ since: 9000 }).records).toEqual([]);
    expect(store.queryAudit({ until: 10 }).records).toEqual([]);
  });

  it('matches a tool by its upstream name or its exposed server__tool name, including tool names with "__"', () => {
    const { store } = open();
    const r = caller('root');
    store.record(step({ workflowId: 'w', stepNo: 1, caller: r, server: 'github', target: 'search' }), ok(1));
    store.record(step({ workflowId: 'w', stepNo: 2, caller: r, server: 'jira', target: 'search' }), ok(1));
    store.record(step({ workflowId: 'w', stepNo: 3, caller: r, server: 'x', target: 'github__search' }), ok(1));
    store.flush();
    expect(store.queryAudit({ tool: 'search' }).records.map((x) => x.step)).toEqual([2, 1]);
    expect(store.queryAudit({ tool: 'github__search' }).records.map((x) => x.step)).toEqual([3, 1]);
    expect(store.queryAudit({ tool: 'x__github__search' }).records.map((x) => x.step)).toEqual([3]);
    expect(store.queryAudit({ tool: 'jira__nothing' }).records).toEqual([]);
  });

  it('pages a search alone inside the index with the cursor', () => {
    const { store } = open();
    const r = caller('root');
    for (let i = 1; i <= 5; i++) store.record(step({ workflowId: 'w', stepNo: i, caller: r, target: 't', args: { note: `common word ${i}` } }), ok(1));
    store.flush();
    const first = store.queryAudit({ q: 'common', limit: 2 });
    expect(first.records.map((x) => x.step)).toEqual([5, 4]);
    const second = store.queryAudit({ q: 'common', limit: 2, cursor: first.nextCursor! });
    expect(second.records.map((x) => x.step)).toEqual([3, 2]);
    const last = store.queryAudit({ q: 'common', limit: 2, cursor: second.nextCursor! });
    expect(last.records.map((x) => x.step)).toEqual([1]);
    expect(last.nextCursor).toBeNull();
    expect([...store.exportAudit({ q: 'common' })].map((x) => x.step)).toEqual([1, 2, 3, 4, 5]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/audit/db.js';
import { AuditStore } from '../../src/audit/store.js';
import { canTransition, WorkflowError, WorkflowRegistry } from '../../src/audit/workflows.js';
import type { WorkflowState } from '../../src/gateway/types.js';
import { caller, ok, refused, removeTempDirs, step, tempDataDir } from './helpers.js';

const opened: Array<{ db: Db; store: AuditStore }> = [];

function openRegistry(dataDir = tempDataDir()): { db: Db; store: AuditStore; workflows: WorkflowRegistry; dataDir: string } {
  const db = openDatabase({ dataDir });
  const store = new AuditStore(db, { flushMs: 60_000 });
  opened.push({ db, store });
  return { db, store, workflows: new WorkflowRegistry(db, store), dataDir };
}

function closeAll(): void {
  for (const { db, store } of opened.splice(0)) {
    store.close();
    closeDatabase(db);
  }
}

afterEach(() => {
  closeAll();
  removeTempDirs();
});

describe('WorkflowRegistry', () => {
  it('begins a workflow, and joins it when the id exists', () => {
    const { workflows } = openRegistry();
    const id = workflows.begin({ caller: caller('root'), kind: 'mcp', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(workflows.begin({ caller: caller('child'), kind: 'mcp', id })).toBe(id);
    expect(workflows.get(id)).toMatchObject({ id, agent: 'root', user: 'alice@example.com', state: 'active', kind: 'mcp', steps: 0 });
    expect(workflows.begin({ caller: caller('root'), kind: 'a2a', id: 'given-id-1' })).toBe('given-id-1');
    expect(workflows.state('given-id-1')).toBe('active');
    expect(workflows.state('nope')).toBeUndefined();
    expect(() => workflows.begin({ caller: caller(), kind: 'mcp', id: 'bad id with spaces' })).toThrow(WorkflowError);
  });

  it('numbers steps monotonically and resumes after a restart', () => {
    const dataDir = tempDataDir();
    const first = openRegistry(dataDir);
    const id = first.workflows.begin({ caller: caller(), kind: 'mcp' });
    expect([1, 2, 3].map(() => first.workflows.nextStep(id))).toEqual([1, 2, 3]);
    // Step 3 was allocated but never recorded: the persisted counter still covers it.
    first.store.record(step({ workflowId: id, stepNo: 1 }), ok());
    first.store.record(step({ workflowId: id, stepNo: 2 }), ok());
    closeAll();
    const second = openRegistry(dataDir);
    expect(second.workflows.nextStep(id)).toBe(4);
    expect(second.workflows.get(id)?.steps).toBe(4);
  });

  it('resumes from the audit trail when the counter row lags behind it', () => {
    const dataDir = tempDataDir();
    const first = openRegistry(dataDir);
    const id = first.workflows.begin({ caller: caller(), kind: 'mcp' });
    first.store.record(step({ workflowId: id, stepNo: 7 }), ok());
    closeAll();
    expect(openRegistry(dataDir).workflows.nextStep(id)).toBe(8);
  });

  it('persists state changes immediately and tells listeners', () => {
    const dataDir = tempDataDir();
    const { workflows } = openRegistry(dataDir);
    const id = workflows.begin({ caller: caller(), kind: 'mcp' });
    const heard: Array<[workflowId: string, state: WorkflowState, why?: string]> = [];
    const stop = workflows.onStateChange((...args) => heard.push(args));
    workflows.onStateChange(() => {
      throw new Error('a broken listener must not stop the others');
    });
    workflows.setState(id, 'paused', 'admin pause');
    workflows.setState(id, 'paused');
    workflows.setState(id, 'active');
    workflows.setState(id, 'tripped', 'loop_detected');
    stop();
    workflows.setState(id, 'killed', 'admin kill');
    expect(heard).toEqual([
      [id, 'paused', 'admin pause'],
      [id, 'active', undefined],
      [id, 'tripped', 'loop_detected'],
    ]);
    expect(() => workflows.setState(id, 'active')).toThrow(expect.objectContaining({ code: 'illegal_transition' }));
    expect(() => workflows.setState('missing', 'paused')).toThrow(expect.objectContaining({ code: 'unknown_workflow' }));
    closeAll();
    const reopened = openRegistry(dataDir).workflows;
    expect(reopened.state(id)).toBe('killed');
    expect(reopened.get(id)).toMatchObject({ why: 'admin kill', endedAt: expect.any(String) });
  });

  it('reopens a done workflow when a session joins it, but never a killed one', () => {
    const { workflows } = openRegistry();
    const done = workflows.begin({ caller: caller(), kind: 'mcp' });
    workflows.setState(done, 'done');
    workflows.begin({ caller: caller('child'), kind: 'mcp', id: done });
    expect(workflows.state(done)).toBe('active');
    const killed = workflows.begin({ caller: caller(), kind: 'mcp' });
    workflows.setState(killed, 'killed');
    workflows.begin({ caller: caller('child'), kind: 'mcp', id: killed });
    expect(workflows.state(killed)).toBe('killed');
    expect(canTransition('killed', 'active')).toBe(false);
    expect(canTransition('tripped', 'active')).toBe(true);
  });

  it('lists newest first with filters and paging', () => {
    const { workflows } = openRegistry();
    const ids = ['a', 'b', 'c', 'd', 'e'].map((s, i) => workflows.begin({ caller: caller(i % 2 === 0 ? 'even' : 'odd'), kind: 'mcp', id: `wf-${s}` }));
    for (const id of ids) if (id !== 'wf-c') workflows.nextStep(id);
    workflows.setState('wf-c', 'paused');
    expect(workflows.list().workflows.map((w) => w.id)).toEqual([...ids].reverse());
    expect(workflows.list({ agent: 'odd' }).workflows.map((w) => w.id)).toEqual(['wf-d', 'wf-b']);
    expect(workflows.list({ state: 'paused' }).workflows).toMatchObject([{ id: 'wf-c', state: 'paused', agent: 'even', startedAt: expect.any(String), steps: 0 }]);
    const page1 = workflows.list({ limit: 3 });
    expect(page1.workflows.map((w) => w.id)).toEqual(['wf-e', 'wf-d', 'wf-c']);
    const page2 = workflows.list({ limit: 3, cursor: page1.nextCursor ?? undefined });
    expect(page2).toMatchObject({ workflows: [{ id: 'wf-b' }, { id: 'wf-a' }], nextCursor: null });
    expect(workflows.list({ since: Date.now() + 60_000 }).workflows).toEqual([]);
  });

  it('builds the step tree from audit rows, in order and nested under parent steps', () => {
    const { workflows, store } = openRegistry();
    const id = workflows.begin({ caller: caller('root'), kind: 'mcp' });
    const root = caller('root');
    const child = caller('sub', { chain: ['root', 'sub'], via: 'delegated' });
    const s1 = workflows.nextStep(id);
    const s2 = workflows.nextStep(id);
    const s3 = workflows.nextStep(id);
    const s4 = workflows.nextStep(id);
    store.record(step({ workflowId: id, stepNo: s1, caller: root, target: 'plan' }), ok(10));
    store.record(step({ workflowId: id, stepNo: s3, parentStep: s2, caller: child, target: 'drop_table' }), refused('policy_denied'));
    store.record(step({ workflowId: id, stepNo: s2, parentStep: s1, caller: root, target: 'delegate', server: 'agents', kind: 'a2a/message' }), ok(40));
    store.record(step({ workflowId: id, stepNo: s4, caller: child, parentStep: s2, target: 'search' }), ok(5));
    const tree = workflows.tree(id);
    expect(tree).toMatchObject({ id, agent: 'root', state: 'active', stepCount: 4 });
    expect(tree?.steps.map((s) => [s.step, s.parentStep, s.agent, s.tool, s.outcome, s.reason])).toEqual([
      [1, null, 'root', 'plan', 'ok', null],
      [2, 1, 'root', 'delegate', 'ok', null],
      [3, 2, 'sub', 'drop_table', 'refused', 'policy_denied'],
      [4, 2, 'sub', 'search', 'ok', null],
    ]);
    expect(tree?.steps[0]).toMatchObject({ durationMs: 10, startedAt: expect.stringMatching(/Z$/) });
    expect(tree?.tree).toHaveLength(1);
    expect(tree?.tree[0]?.children?.[0]?.children?.map((s) => s.step)).toEqual([3, 4]);
    expect(workflows.tree('unknown')).toBeUndefined();
  });

  it('counts workflows per state for the active gauge', () => {
    const { workflows } = openRegistry();
    const a = workflows.begin({ caller: caller(), kind: 'mcp' });
    workflows.nextStep(a);
    const b = workflows.begin({ caller: caller(), kind: 'mcp' });
    workflows.setState(b, 'paused');
    expect(workflows.countByState()).toMatchObject({ active: 1, paused: 1, killed: 0 });
  });

  it('shows a workflow in lists and counts only once it has its first step', () => {
    const { workflows, store } = openRegistry();
    const idle = workflows.begin({ caller: caller(), kind: 'mcp' });
    const quiet = workflows.begin({ caller: caller(), kind: 'mcp' });
    workflows.setState(quiet, 'done', 'closed by client');
    expect(workflows.list().workflows).toEqual([]);
    expect(workflows.countByState()).toMatchObject({ active: 0, done: 0 });
    expect(workflows.get(idle)).toMatchObject({ id: idle, state: 'active' });
    workflows.nextStep(idle);
    expect(workflows.countByState()).toMatchObject({ active: 1 });
    expect(workflows.list().workflows.map((w) => w.id)).toEqual([idle]);
    store.flush();
    expect(workflows.countByState()).toMatchObject({ active: 1, done: 0 });
  });
});

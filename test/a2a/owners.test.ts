/** Task owners: the one rule, first claim wins, and the SQLite store keeps them across a reopen of the database. */
import { describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/index.js';
import { mayUse, MemoryTaskOwners, refusedIds, SqliteTaskOwners, type TaskOwnerStore } from '../../src/upstream/a2a-owners.js';
import { scratch } from '../helpers/gateway.js';

const alice = { agentId: 'alice', workflowId: 'wf-a', stepNo: 1 };

describe('mayUse', () => {
  it('the owner, or a caller inside its workflow; nobody for an unknown id', () => {
    expect(mayUse({ agentId: 'alice' }, alice)).toBe(true);
    expect(mayUse({ agentId: 'bob', workflowId: 'wf-a' }, alice)).toBe(true);
    expect(mayUse({ agentId: 'bob', workflowId: 'wf-b' }, alice)).toBe(false);
    expect(mayUse({ agentId: 'bob' }, alice)).toBe(false);
    expect(mayUse({ agentId: 'alice' }, undefined)).toBe(false);
  });
});

async function behaves(store: TaskOwnerStore): Promise<void> {
  await store.claim('echo', 'task', 't1', alice);
  await store.claim('echo', 'task', 't1', { agentId: 'bob', workflowId: 'wf-b', stepNo: 9 });
  expect(await store.ownerOf('echo', 'task', 't1')).toEqual(alice);
  expect(await store.ownerOf('other', 'task', 't1')).toBeUndefined();
  expect(await store.ownerOf('echo', 'context', 't1')).toBeUndefined();
  await store.claim('echo', 'context', 'c1', alice);
  expect(await refusedIds(store, 'echo', { agentId: 'bob' }, { taskId: 't1' })).toBe('task');
  expect(await refusedIds(store, 'echo', { agentId: 'bob' }, { taskId: 'never-seen' })).toBe('task');
  expect(await refusedIds(store, 'echo', { agentId: 'bob' }, { contextId: 'c1' })).toBe('context');
  expect(await refusedIds(store, 'echo', { agentId: 'bob' }, { contextId: 'fresh' })).toBeUndefined();
  expect(await refusedIds(store, 'echo', { agentId: 'alice' }, { taskId: 't1', contextId: 'c1' })).toBeUndefined();
}

describe('stores', () => {
  it('in memory', async () => {
    await behaves(new MemoryTaskOwners());
  });

  it('in SQLite, kept across a reopen', async () => {
    const dataDir = scratch('a2a-owners-');
    const db = openDatabase({ dataDir });
    await behaves(new SqliteTaskOwners(db));
    closeDatabase(db);
    const again = openDatabase({ dataDir });
    expect(await new SqliteTaskOwners(again).ownerOf('echo', 'task', 't1')).toEqual(alice);
    closeDatabase(again);
  });
});

/**
 * Who may use an A2A task or context the gateway relayed. An agent behind the gateway sees one client, the gateway,
 * so keeping callers apart is the gateway's job, on both paths (`/a2a/{name}` and the `{name}__*` MCP tools) with one
 * rule (`mayUse`). Owners are kept in a TaskOwnerStore (src/stores/): SQLite by default, memory for tests.
 */
import type { TaskOwner, TaskOwnerStore } from '../stores/task-owners.js';

export type { OwnedKind, TaskOwner, TaskOwnerStore } from '../stores/task-owners.js';
export { MemoryTaskOwners } from '../stores/memory/task-owners.js';
export { SqliteTaskOwners } from '../stores/sqlite/task-owners.js';

/**
 * The one rule: a task or context belongs to the agent that started it, and to callers acting inside its workflow
 * (a delegated token, an allowed X-Workflow-Id). An id without an owner is nobody's: answered as if it did not exist.
 */
export function mayUse(caller: { agentId: string; workflowId?: string }, owner: TaskOwner | undefined): boolean {
  return owner !== undefined && (owner.agentId === caller.agentId || (caller.workflowId !== undefined && owner.workflowId === caller.workflowId));
}

/**
 * Which id of a request the caller may not use: a task it does not own (unknown ones included), or a context
 * another caller started (a new context is the caller's to start). Both paths ask this before relaying.
 */
export async function refusedIds(
  owners: TaskOwnerStore,
  server: string,
  caller: { agentId: string; workflowId?: string },
  ids: { taskId?: string; contextId?: string },
): Promise<'task' | 'context' | undefined> {
  if (ids.taskId && !mayUse(caller, await owners.ownerOf(server, 'task', ids.taskId))) return 'task';
  if (ids.contextId) {
    const owner = await owners.ownerOf(server, 'context', ids.contextId);
    if (owner && !mayUse(caller, owner)) return 'context';
  }
  return undefined;
}

/** Who started each A2A task and context the gateway relayed, per federated agent: the first claim wins. */
import type { Awaitable } from './types.js';

export type OwnedKind = 'task' | 'context';

export interface TaskOwner {
  /** The agent that started the task or context. */
  agentId: string;
  workflowId: string;
  /** The step that started it: follow-ups in the same workflow hang under it. */
  stepNo: number;
}

export interface TaskOwnerStore {
  /** Record the owner of an id at a federated agent, unless it has one already (the first step that named it started it). */
  claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): Awaitable<void>;
  ownerOf(server: string, kind: OwnedKind, id: string): Awaitable<TaskOwner | undefined>;
}

/**
 * Who started each A2A task and context the gateway relayed. An agent behind the gateway sees one client, the
 * gateway, so keeping callers apart is the gateway's job, on both paths (`/a2a/{name}` and the `{name}__*` MCP
 * tools) with one rule (`mayUse`). Owners live in the gateway's SQLite database, so a restart forgets none; the
 * in-memory store is for tests and for gateways without a data directory.
 */
import { registerMigration, type Db } from '../audit/db.js';

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
  claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): Promise<void>;
  ownerOf(server: string, kind: OwnedKind, id: string): Promise<TaskOwner | undefined>;
}

/**
 * The one rule: a task or context belongs to the agent that started it, and to callers acting inside its workflow
 * (a delegated token, an allowed X-Workflow-Id). An id without an owner is nobody's: answered as if it did not exist.
 */
export function mayUse(caller: { agentId: string; workflowId?: string }, owner: TaskOwner | undefined): boolean {
  return owner !== undefined && (owner.agentId === caller.agentId || (caller.workflowId !== undefined && owner.workflowId === caller.workflowId));
}

const MAX_REMEMBERED = 20_000;

/** Bounded: the oldest entries are forgotten first. */
export class MemoryTaskOwners implements TaskOwnerStore {
  private readonly owners = new Map<string, TaskOwner>();

  async claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): Promise<void> {
    const k = `${server}\n${kind}\n${id}`;
    if (this.owners.has(k)) return;
    if (this.owners.size >= MAX_REMEMBERED) this.owners.delete(this.owners.keys().next().value as string);
    this.owners.set(k, { ...owner });
  }

  async ownerOf(server: string, kind: OwnedKind, id: string): Promise<TaskOwner | undefined> {
    return this.owners.get(`${server}\n${kind}\n${id}`);
  }
}

registerMigration(
  'a2a',
  1,
  `CREATE TABLE IF NOT EXISTS a2a_owners (
     server      TEXT    NOT NULL,
     kind        TEXT    NOT NULL,
     id          TEXT    NOT NULL,
     agent       TEXT    NOT NULL,
     workflow_id TEXT    NOT NULL,
     step        INTEGER NOT NULL,
     created_at  INTEGER NOT NULL,
     PRIMARY KEY (server, kind, id)
   );
   CREATE INDEX IF NOT EXISTS a2a_owners_created ON a2a_owners (created_at);`,
);

interface OwnerRow {
  agent: string;
  workflow_id: string;
  step: number;
}

/** Owners in the gateway database (table a2a_owners, migration room 'a2a'). */
export class SqliteTaskOwners implements TaskOwnerStore {
  private readonly insert;
  private readonly select;

  constructor(db: Db) {
    this.insert = db.prepare('INSERT OR IGNORE INTO a2a_owners (server, kind, id, agent, workflow_id, step, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.select = db.prepare<[string, string, string], OwnerRow>('SELECT agent, workflow_id, step FROM a2a_owners WHERE server = ? AND kind = ? AND id = ?');
  }

  async claim(server: string, kind: OwnedKind, id: string, owner: TaskOwner): Promise<void> {
    this.insert.run(server, kind, id, owner.agentId, owner.workflowId, owner.stepNo, Date.now());
  }

  async ownerOf(server: string, kind: OwnedKind, id: string): Promise<TaskOwner | undefined> {
    const row = this.select.get(server, kind, id);
    return row ? { agentId: row.agent, workflowId: row.workflow_id, stepNo: row.step } : undefined;
  }
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

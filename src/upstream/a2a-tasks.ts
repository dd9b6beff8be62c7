/**
 * Which MCP step started an A2A task or context. `A2aTransport` notes it when a `{name}__send_message` call
 * learns its task; follow-ups (through MCP, or by the same agent through `/a2a/{name}`) hang under that step
 * in the same workflow. Bounded: the oldest entries are forgotten first.
 */

export interface McpOrigin {
  workflowId: string;
  /** The tools/call step that started the task or context. */
  stepNo: number;
  /** The agent that made the call: only it continues the task in this workflow. */
  callerId: string;
}

const MAX_REMEMBERED = 20_000;

const tasks = new Map<string, McpOrigin>();
const contexts = new Map<string, McpOrigin>();

const key = (server: string, id: string) => `${server}\n${id}`;

function put(map: Map<string, McpOrigin>, k: string, origin: McpOrigin): void {
  if (map.has(k)) return; // the first step that named a task or context started it
  if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value as string);
  map.set(k, origin);
}

/** Note the step that started a task (and its context), unless an earlier step already did. */
export function rememberMcpOrigin(server: string, ids: { taskId?: string; contextId?: string }, origin: McpOrigin): void {
  if (ids.taskId) put(tasks, key(server, ids.taskId), origin);
  if (ids.contextId) put(contexts, key(server, ids.contextId), origin);
}

/** The MCP step that started this task (or, failing that, this context) at the agent `server`. */
export function mcpOriginOf(server: string, ids: { taskId?: string; contextId?: string }): McpOrigin | undefined {
  return (ids.taskId ? tasks.get(key(server, ids.taskId)) : undefined) ?? (ids.contextId ? contexts.get(key(server, ids.contextId)) : undefined);
}

/** The MCP step that started this task at `server`, by task id only. */
export function mcpTaskOrigin(server: string, taskId: string | undefined): McpOrigin | undefined {
  return taskId ? tasks.get(key(server, taskId)) : undefined;
}

/** A2A replies (tasks, messages, stream events) rendered as MCP tool results a model can read and act on. */
import { TaskState, taskStateToJSON, type AgentCard, type Message, type Part, type Task } from '@a2a-js/sdk';

/** What a model needs to continue: ids, state and the agent's words. Also the tool's structuredContent. */
export interface TaskSummary {
  taskId?: string;
  contextId?: string;
  /** A2A state in its short form: submitted, working, input-required, completed, failed, canceled, rejected, auth-required. */
  state: string;
  text: string;
}

export interface McpContent {
  type: string;
  [key: string]: unknown;
}

export interface CallToolResult {
  content: McpContent[];
  structuredContent?: TaskSummary;
  isError?: boolean;
  [key: string]: unknown;
}

/** `TASK_STATE_INPUT_REQUIRED` → `input-required` (the names A2A 0.3 used, easier on models). */
export function stateName(state: TaskState | undefined): string {
  if (state === undefined) return 'unknown';
  const json = taskStateToJSON(state);
  return json.startsWith('TASK_STATE_') ? json.slice('TASK_STATE_'.length).toLowerCase().replace(/_/g, '-') : json.toLowerCase();
}

/** States in which the agent waits for the caller: the stream ends and the model decides. */
export function isSettled(state: TaskState | undefined): boolean {
  return (
    state === TaskState.TASK_STATE_COMPLETED ||
    state === TaskState.TASK_STATE_FAILED ||
    state === TaskState.TASK_STATE_CANCELED ||
    state === TaskState.TASK_STATE_REJECTED ||
    state === TaskState.TASK_STATE_INPUT_REQUIRED ||
    state === TaskState.TASK_STATE_AUTH_REQUIRED
  );
}

export function partText(part: Part): string | undefined {
  const c = part.content;
  if (!c) return undefined;
  if (c.$case === 'text') return c.value;
  if (c.$case === 'data') return JSON.stringify(c.value);
  if (c.$case === 'url') return `${part.filename || 'file'}: ${c.value}`;
  return undefined;
}

export function textOf(parts: readonly Part[]): string {
  return parts
    .map(partText)
    .filter((t): t is string => t !== undefined && t !== '')
    .join('\n');
}

function partContent(part: Part): McpContent | undefined {
  const c = part.content;
  if (!c) return undefined;
  switch (c.$case) {
    case 'text':
      return { type: 'text', text: c.value };
    case 'data':
      return { type: 'text', text: JSON.stringify(c.value) };
    case 'url':
      return { type: 'resource_link', uri: c.value, name: part.filename || c.value, ...(part.mediaType ? { mimeType: part.mediaType } : {}) };
    case 'raw': {
      const mimeType = part.mediaType || 'application/octet-stream';
      const data = Buffer.from(c.value).toString('base64');
      if (mimeType.startsWith('image/')) return { type: 'image', data, mimeType };
      if (mimeType.startsWith('audio/')) return { type: 'audio', data, mimeType };
      return { type: 'resource', resource: { uri: `a2a:file/${encodeURIComponent(part.filename || 'attachment')}`, mimeType, blob: data } };
    }
  }
}

/** The parts that carry the agent's answer: the latest status message, then every artifact. */
export function replyParts(reply: Task | Message): Part[] {
  if ('parts' in reply) return reply.parts;
  return [...(reply.status?.message?.parts ?? []), ...reply.artifacts.flatMap((a) => a.parts)];
}

export function summarize(reply: Task | Message): TaskSummary {
  const parts = replyParts(reply);
  if ('parts' in reply) {
    // A bare message is a complete answer without a task to follow up on.
    return { ...(reply.taskId ? { taskId: reply.taskId } : {}), ...(reply.contextId ? { contextId: reply.contextId } : {}), state: 'completed', text: textOf(parts) };
  }
  return { taskId: reply.id, contextId: reply.contextId, state: stateName(reply.status?.state), text: textOf(parts) };
}

/** One line so a model knows where the task stands and how to go on with it. */
function statusLine(s: TaskSummary): string {
  if (!s.taskId) return `The agent answered with a message (no task)${s.contextId ? `; contextId ${s.contextId}` : ''}.`;
  const ids = `taskId ${s.taskId}, contextId ${s.contextId ?? '(none)'}`;
  switch (s.state) {
    case 'input-required':
    case 'auth-required':
      return `Task ${s.taskId} is ${s.state}: the agent waits for you. Call send_message again with taskId "${s.taskId}" and contextId "${s.contextId ?? ''}" and your answer as message.`;
    case 'completed':
      return `Task completed (${ids}). Send a new message with this contextId to continue the conversation.`;
    case 'submitted':
    case 'working':
      return `Task ${s.taskId} is still ${s.state} (${ids}); check on it with get_task.`;
    default:
      return `Task ${s.taskId} is ${s.state} (${ids}).`;
  }
}

export function toCallToolResult(reply: Task | Message): CallToolResult {
  const summary = summarize(reply);
  const content = replyParts(reply)
    .map(partContent)
    .filter((c): c is McpContent => c !== undefined);
  content.push({ type: 'text', text: statusLine(summary) });
  const failed = summary.state === 'failed' || summary.state === 'rejected';
  return { content, structuredContent: summary, ...(failed ? { isError: true } : {}) };
}

export function errorResult(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

const MAX_DESCRIPTION = 2000;

/** The send_message description: the agent's own description and its skills, so a model can pick it. */
export function describeAgent(card: AgentCard): string {
  const lines = [`Send a message to the A2A agent "${card.name}"${card.description ? `: ${card.description}` : '.'}`];
  if (card.skills.length > 0) {
    lines.push('Skills:');
    for (const s of card.skills) {
      const examples = s.examples.length > 0 ? ` (e.g. ${s.examples.slice(0, 2).map((e) => JSON.stringify(e)).join(', ')})` : '';
      lines.push(`- ${s.name || s.id}: ${s.description}${examples}`);
    }
  }
  lines.push('Returns the reply with taskId, contextId and state; when the state is input-required, answer by calling send_message again with the same taskId and contextId.');
  const text = lines.join('\n');
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION - 1)}…` : text;
}

/**
 * Callers kept apart at federated A2A agents, through a real gateway process with API-key agents: a task belongs to
 * the agent that started it on both paths (`{agent}__*` MCP tools and `/a2a/{name}`), also after a restart, and
 * `a2a.allow` decides on both paths whether an agent may message an A2A agent at all.
 */
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, readStats, scratch, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';
import { startAgents, type RunningAgents } from './agents.js';

interface Summary {
  taskId?: string;
  contextId?: string;
  state: string;
}
type Result = CallToolResult & { structuredContent?: Summary };

const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-0123456789', carol: 'carol-key-0123456789' };
const sha = (k: string) => `sha256:${createHash('sha256').update(k).digest('hex')}`;
const agentsD = {
  alice: { id: 'alice', credentials: { apiKeys: [sha(KEYS.alice)] }, tools: { allow: ['*'] }, a2a: { allow: ['*'] } },
  bob: { id: 'bob', credentials: { apiKeys: [sha(KEYS.bob)] }, tools: { allow: ['*'] }, a2a: { allow: ['*'] } },
  // Sees every tool (tools.allow) but may message only steps-agent (a2a.allow).
  carol: { id: 'carol', credentials: { apiKeys: [sha(KEYS.carol)] }, tools: { allow: ['*'] }, a2a: { allow: ['steps-*'] } },
};

let agents: RunningAgents;
let statsFile: string;
let gw: RunningGateway;

function servers(a: RunningAgents) {
  return { 'echo-agent': { transport: 'a2a', url: a.echo }, 'steps-agent': { transport: 'a2a', url: a.steps } };
}

async function clientOf(who: keyof typeof KEYS, g = gw): Promise<Client> {
  return connectClient(g.mcpUrl, { name: who, headers: { authorization: `Bearer ${KEYS[who]}` } });
}

async function call(c: Client, name: string, args: Record<string, unknown>): Promise<Result> {
  return (await c.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, { timeout: 20_000 })) as Result;
}

const text = (r: CallToolResult) => r.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');

async function a2a(who: keyof typeof KEYS, agent: string, method: string, params: Record<string, unknown>, g = gw): Promise<{ result?: Record<string, unknown>; error?: { code: number; message: string; data?: { reason?: string } } }> {
  const res = await fetch(`${g.url}/a2a/${agent}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS[who]}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return (await res.json()) as never;
}

const message = (text: string, extra: Record<string, unknown> = {}) => ({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...extra } });

beforeAll(async () => {
  statsFile = join(scratch('a2a-isolation-'), 'stats.jsonl');
  agents = await startAgents(['--stats-file', statsFile]);
  gw = await startGateway({ servers: servers(agents), agents: agentsD });
});

afterAll(async () => {
  await stopAll();
  await agents?.stop();
});

describe('A2A task ownership through MCP and /a2a', () => {
  it("another agent's task is answered through MCP exactly like a task that does not exist; the owner still reads it", async () => {
    const alice = await clientOf('alice');
    const bob = await clientOf('bob');
    const sent = await call(alice, 'echo-agent__send_message', { message: 'mine' });
    const taskId = sent.structuredContent!.taskId!;
    expect(sent.structuredContent!.state).toBe('completed');

    const foreign = await call(bob, 'echo-agent__get_task', { taskId });
    const missingId = randomUUID();
    const missing = await call(bob, 'echo-agent__get_task', { taskId: missingId });
    expect(foreign.isError).toBe(true);
    expect(text(foreign)).toMatch(/Task not found/);
    expect(text(foreign).replace(taskId, 'ID')).toBe(text(missing).replace(missingId, 'ID'));
    expect(foreign.structuredContent).toBeUndefined();

    const continued = await call(bob, 'echo-agent__send_message', { message: 'hijack', taskId });
    expect(continued.isError).toBe(true);
    expect(text(continued).replace(taskId, 'ID')).toBe(text(missing).replace(missingId, 'ID'));
    const before = readStats(statsFile).length;
    await call(bob, 'echo-agent__get_task', { taskId });
    expect(readStats(statsFile).length).toBe(before); // refused by the gateway, never relayed

    const own = await call(alice, 'echo-agent__get_task', { taskId });
    expect(own.structuredContent).toMatchObject({ taskId, state: 'completed' });
    // The same owner record guards /a2a/{name}.
    expect((await a2a('bob', 'echo-agent', 'GetTask', { id: taskId })).error?.code).toBe(-32001);
    expect((await a2a('alice', 'echo-agent', 'GetTask', { id: taskId })).result?.id).toBe(taskId);
  });

  it("a task started through /a2a is another agent's through MCP too, and a foreign context cannot be continued", async () => {
    const sent = await a2a('alice', 'steps-agent', 'SendMessage', message('steps:1 via a2a'));
    const task = (sent.result as { task: { id: string; contextId: string } }).task;
    const bob = await clientOf('bob');
    const peek = await call(bob, 'steps-agent__get_task', { taskId: task.id });
    expect(text(peek)).toMatch(/Task not found/);
    const join = await call(bob, 'steps-agent__send_message', { message: 'join in', contextId: task.contextId });
    expect(join.isError).toBe(true);
    expect(text(join)).toContain('omit contextId to start a new conversation');
    const joinA2a = await a2a('bob', 'steps-agent', 'SendMessage', message('join in', { contextId: task.contextId }));
    expect(joinA2a.error?.message).toContain('omit contextId to start a new conversation');
    const alice = await clientOf('alice');
    expect((await call(alice, 'steps-agent__get_task', { taskId: task.id })).structuredContent?.taskId).toBe(task.id);
  });

  it('ownership survives a gateway restart: the owner continues its task, others still find nothing', async () => {
    const alice = await clientOf('alice');
    const first = await call(alice, 'steps-agent__send_message', { message: 'steps:1 before restart' });
    expect(first.structuredContent!.state).toBe('input-required');
    const { taskId, contextId } = first.structuredContent!;
    await alice.close();

    await gw.stop();
    gw = await startGateway({ servers: servers(agents), agents: agentsD, dir: gw.dir });

    const bob = await clientOf('bob');
    expect(text(await call(bob, 'steps-agent__get_task', { taskId }))).toMatch(/Task not found/);
    expect((await a2a('bob', 'steps-agent', 'GetTask', { id: taskId })).error?.code).toBe(-32001);
    const again = await clientOf('alice');
    const done = await call(again, 'steps-agent__send_message', { message: 'teal', taskId, contextId });
    expect(done.structuredContent).toMatchObject({ taskId, state: 'completed' });
  });
});

describe('a2a.allow on both paths', () => {
  it('an agent whose a2a.allow leaves an A2A agent out is refused through MCP as through /a2a, before the agent is reached', async () => {
    const carol = await clientOf('carol');
    const before = readStats(statsFile).filter((s) => (s as { agent?: string }).agent === 'echo-agent').length;
    const refused = await call(carol, 'echo-agent__send_message', { message: 'let me in' }).then(
      () => undefined,
      (err: Error & { code?: number; data?: { reason?: string } }) => err,
    );
    expect(refused?.code).toBe(-32030);
    expect(refused?.data?.reason).toBe('policy_denied');
    expect(refused?.message).toContain("may not message A2A agent 'echo-agent'; an admin can add it to a2a.allow");
    const viaA2a = await a2a('carol', 'echo-agent', 'SendMessage', message('let me in'));
    expect(viaA2a.error?.data?.reason).toBe('policy_denied');
    expect(viaA2a.error?.message).toBe(refused?.message.replace(/^MCP error -32030: /, ''));
    expect(readStats(statsFile).filter((s) => (s as { agent?: string }).agent === 'echo-agent').length).toBe(before);
    const allowed = await call(carol, 'steps-agent__send_message', { message: 'steps:1 allowed' });
    expect(allowed.structuredContent?.state).toBe('input-required');
  });
});

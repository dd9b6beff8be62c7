/** A2aTransport behind a real UpstreamSession: the MCP server it emulates in front of the fixture agents. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { A2aTransport } from '../../src/upstream/a2a.js';
import { UpstreamError } from '../../src/upstream/errors.js';
import { UpstreamSession } from '../../src/upstream/session.js';
import type { RpcNotification } from '../../src/util/jsonrpc.js';
import { scratch, stopAll, waitFor } from '../helpers/gateway.js';
import { a2aManifest, startAgents, type RunningAgents } from './agents.js';

const log = pino({ level: 'silent' });
const init = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'test', version: '0' } };
let agents: RunningAgents;
let statsFile: string;

async function connect(name: string, url: string, headers: Record<string, string> = {}): Promise<UpstreamSession> {
  const m = a2aManifest(name, url, { headers });
  const s = new UpstreamSession(m, new A2aTransport(m, log), init, {}, log);
  await s.connect();
  return s;
}

interface ToolResult {
  content: Array<{ type: string; text?: string }>;
  structuredContent?: { taskId?: string; contextId?: string; state: string; text: string };
  isError?: boolean;
}

beforeAll(async () => {
  statsFile = join(scratch('a2a-stats-'), 'stats.jsonl');
  agents = await startAgents(['--auth-token', 'sekret', '--stats-file', statsFile]);
});
afterAll(async () => {
  await agents?.stop();
  await stopAll();
});

describe('A2A agent as an MCP server', () => {
  it('initializes from the card (base URL), lists send_message and get_task with the skills in the description', async () => {
    const s = await connect('echo', agents.echo, { Authorization: 'Bearer sekret' });
    expect(s.serverCapabilities).toEqual({ tools: {} });
    expect(s.serverInfo.name).toBe('echo-agent');
    const res = await s.request('tools/list', {});
    const tools = (res.result as { tools: Array<{ name: string; description: string }> }).tools;
    expect(tools.map((t) => t.name)).toEqual(['send_message', 'get_task']);
    expect(tools[0]!.description).toContain('Echoes back whatever text it is sent.');
    expect(tools[0]!.description).toContain('Echo: Repeats the message text.');
    await s.close();
  });

  it('sends a message with the manifest headers and returns text, data and the task summary', async () => {
    const s = await connect('echo', `${agents.echo}/.well-known/agent-card.json`, { Authorization: 'Bearer sekret' });
    const res = await s.request('tools/call', { name: 'send_message', arguments: { message: 'hello there' } });
    const r = res.result as ToolResult;
    expect(r.isError).toBeUndefined();
    expect(r.content[0]).toEqual({ type: 'text', text: 'echo: hello there' });
    expect(JSON.parse(r.content[1]!.text!)).toEqual({ echoed: 'hello there', length: 11 });
    expect(r.structuredContent).toMatchObject({ state: 'completed', text: expect.stringContaining('echo: hello there') });
    expect(r.structuredContent!.taskId).toMatch(/[0-9a-f-]{36}/);
    const got = (await s.request('tools/call', { name: 'get_task', arguments: { taskId: r.structuredContent!.taskId } })).result as ToolResult;
    expect(got.structuredContent).toEqual(r.structuredContent);
    const lines = readFileSync(statsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { agent: string; headers: Record<string, string> });
    expect(lines.filter((l) => l.agent === 'echo-agent').every((l) => l.headers.authorization === 'Bearer sekret')).toBe(true);
    await s.close();
  });

  it('without the credential the agent refuses, and the tool says so as a tool error', async () => {
    const s = await connect('echo', agents.echo);
    const r = (await s.request('tools/call', { name: 'send_message', arguments: { message: 'x' } })).result as ToolResult;
    expect(r.isError).toBe(true);
    expect(r.content[0]!.text).toContain('missing or wrong bearer token');
    await s.close();
  });

  it('streams progress, stops at input-required and completes on the follow-up', async () => {
    const s = await connect('steps', agents.steps, { Authorization: 'Bearer sekret' });
    const progress: RpcNotification[] = [];
    const first = (
      await s.request('tools/call', { name: 'send_message', arguments: { message: 'steps:3 go' }, _meta: { progressToken: 'tok-1' } }, { onNotification: (n) => progress.push(n) })
    ).result as ToolResult;
    expect(first.structuredContent).toMatchObject({ state: 'input-required', text: 'Which value should I use? Reply with the value.' });
    expect(first.content.at(-1)!.text).toContain(`taskId "${first.structuredContent!.taskId}"`);
    const messages = progress.map((p) => p.params?.message as string);
    expect(progress.every((p) => p.params?.progressToken === 'tok-1')).toBe(true);
    expect(messages.filter((m) => /^step \d of 3/.test(m))).toHaveLength(3);
    const { taskId, contextId } = first.structuredContent!;
    const second = (await s.request('tools/call', { name: 'send_message', arguments: { message: '42', taskId, contextId } })).result as ToolResult;
    expect(second.structuredContent).toMatchObject({ taskId, contextId, state: 'completed' });
    expect(second.content.map((c) => c.text)).toEqual(expect.arrayContaining(['done with 42', 'result for 42']));
    await s.close();
  });

  it('a cancelled call cancels the A2A task', async () => {
    const s = await connect('steps', agents.steps, { Authorization: 'Bearer sekret' });
    const controller = new AbortController();
    let taskId: string | undefined;
    const call = s.request(
      'tools/call',
      { name: 'send_message', arguments: { message: 'steps:50 long' }, _meta: { progressToken: 7 } },
      {
        signal: controller.signal,
        onNotification: (n) => {
          taskId ??= /task ([0-9a-f-]{36})/.exec(String(n.params?.message))?.[1];
          if (taskId) controller.abort('enough');
        },
      },
    );
    const res = await call;
    expect(res.error?.code).toBe(-32800);
    expect(taskId).toBeDefined();
    const state = await waitFor(async () => {
      const r = (await s.request('tools/call', { name: 'get_task', arguments: { taskId } })).result as ToolResult;
      return r.structuredContent?.state === 'canceled' ? r.structuredContent.state : undefined;
    }, { what: 'task canceled' });
    expect(state).toBe('canceled');
    await s.close();
  });

  it('an unreachable agent fails the start: agents are told the card could not be read, the operator sees its URL', async () => {
    const m = a2aManifest('gone', 'http://127.0.0.1:9/?key=sekret');
    const s = new UpstreamSession(m, new A2aTransport(m, log), init, {}, log);
    const err = await s.connect().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    const e = err as UpstreamError;
    expect([e.code, e.message]).toEqual(['unreachable', 'its agent card could not be read']);
    expect(e.operator).toMatch(/^cannot read the agent card of 'gone' at http:\/\/127\.0\.0\.1:9\/\.well-known\/agent-card\.json\?key=\*\*\*: /);
    expect(e.operator).not.toContain('sekret');
  });

  it('unknown tools and bad arguments are answered like any MCP server would', async () => {
    const s = await connect('echo', agents.echo, { Authorization: 'Bearer sekret' });
    expect((await s.request('tools/call', { name: 'nope', arguments: {} })).error?.code).toBe(-32602);
    const bad = (await s.request('tools/call', { name: 'send_message', arguments: {} })).result as ToolResult;
    expect(bad.isError).toBe(true);
    expect(bad.content[0]!.text).toContain('message (a non-empty string) is required');
    const missing = (await s.request('tools/call', { name: 'get_task', arguments: { taskId: 'no-such-task' } })).result as ToolResult;
    expect(missing.isError).toBe(true);
    expect(missing.content[0]!.text).toMatch(/not found/i);
    await s.close();
  });
});

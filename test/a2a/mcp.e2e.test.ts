/**
 * A2A agents reached as MCP tools through a real gateway process: an MCP SDK client on /mcp calls
 * `{agent}__send_message` and `{agent}__get_task`, sees progress while a task works, continues an input-required
 * task, cancels one, and finds the calls in the workflow tree of the admin API.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, startGateway, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { startAgents, type RunningAgents } from './agents.js';

interface Summary {
  taskId?: string;
  contextId?: string;
  state: string;
  text: string;
}

let agents: RunningAgents;
let gw: RunningGateway;
let client: Client;

async function call(name: string, args: Record<string, unknown>, opts: { onprogress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<CallToolResult & { structuredContent?: Summary }> {
  return (await client.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, { ...opts, timeout: 20_000 })) as CallToolResult & { structuredContent?: Summary };
}

const texts = (r: CallToolResult) => r.content.flatMap((c) => (c.type === 'text' ? [c.text] : []));

beforeAll(async () => {
  agents = await startAgents(['--auth-token', 'e2e-token']);
  gw = await startGateway({
    servers: {
      // A base URL and a card URL: both resolve the card; the credential reaches the agent from `headers`.
      'echo-agent': { transport: 'a2a', url: agents.echo, headers: { Authorization: 'Bearer e2e-token' } },
      'steps-agent': { transport: 'a2a', url: `${agents.steps}/.well-known/agent-card.json`, headers: { Authorization: 'Bearer ${A2A_TOKEN}' } },
    },
    env: { A2A_TOKEN: 'e2e-token' },
  });
  client = await connectClient(gw.mcpUrl);
});

afterAll(async () => {
  await stopAll();
  await agents?.stop();
});

describe('A2A agents as MCP tools through /mcp', () => {
  it('lists send_message and get_task per agent, described by the agent card and its skills', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual(['echo-agent__get_task', 'echo-agent__send_message', 'steps-agent__get_task', 'steps-agent__send_message']);
    const send = tools.find((t) => t.name === 'steps-agent__send_message')!;
    expect(send.description).toContain('Works through several steps');
    expect(send.description).toContain('Stepwise work: Reports progress on each step');
    expect(send.inputSchema.required).toEqual(['message']);
  });

  it('echo-agent answers at once with its text and data parts, the task id and state', async () => {
    const r = await call('echo-agent__send_message', { message: 'through the gateway' });
    expect(r.isError).toBeFalsy();
    expect(texts(r)[0]).toBe('echo: through the gateway');
    expect(JSON.parse(texts(r)[1]!)).toEqual({ echoed: 'through the gateway', length: 19 });
    expect(r.structuredContent).toMatchObject({ state: 'completed', taskId: expect.any(String), contextId: expect.any(String) });
    const got = await call('echo-agent__get_task', { taskId: r.structuredContent!.taskId });
    expect(got.structuredContent).toEqual(r.structuredContent);
  });

  it('steps-agent reports progress, stops at input-required, and the model continues the task with its ids', async () => {
    const progress: Array<{ at: number; message?: string }> = [];
    const first = await call('steps-agent__send_message', { message: 'steps:4 begin' }, { onprogress: (p) => progress.push({ at: Date.now(), message: p.message }) });
    const answeredAt = Date.now();
    expect(first.structuredContent).toMatchObject({ state: 'input-required', text: 'Which value should I use? Reply with the value.' });
    const steps = progress.filter((p) => /^step \d of 4/.test(p.message ?? ''));
    expect(steps).toHaveLength(4);
    // Progress arrives while the task works, not bundled with the answer.
    expect(answeredAt - steps[0]!.at).toBeGreaterThanOrEqual(250);
    const { taskId, contextId } = first.structuredContent!;
    expect(texts(first).at(-1)).toContain(`taskId "${taskId}"`);

    const second = await call('steps-agent__send_message', { message: 'blue', taskId, contextId });
    expect(second.structuredContent).toMatchObject({ taskId, contextId, state: 'completed' });
    expect(texts(second)).toEqual(expect.arrayContaining(['done with blue', 'result for blue']));
  });

  it('cancelling the MCP call cancels the A2A task', async () => {
    const controller = new AbortController();
    let taskId: string | undefined;
    const pending = call('steps-agent__send_message', { message: 'steps:100 long haul' }, {
      signal: controller.signal,
      onprogress: (p) => {
        taskId ??= /task ([0-9a-f-]{36})/.exec(p.message ?? '')?.[1];
        if (taskId && /^step 2 /.test(p.message ?? '')) controller.abort('changed my mind');
      },
    });
    await expect(pending).rejects.toThrow();
    expect(taskId).toBeDefined();
    const state = await waitFor(async () => {
      const r = await call('steps-agent__get_task', { taskId });
      return r.structuredContent?.state === 'canceled' ? 'canceled' : undefined;
    }, { what: 'the A2A task to be canceled' });
    expect(state).toBe('canceled');
  });

  it('a task started by an MCP call: its follow-ups, through MCP or /a2a, hang under that call in one workflow', async () => {
    const wf = `a2a-parent-${randomUUID()}`;
    const own = await connectClient(gw.mcpUrl, { name: 'parent-test', headers: { 'x-workflow-id': wf } });
    const send = async (args: Record<string, unknown>) =>
      ((await own.request({ method: 'tools/call', params: { name: 'steps-agent__send_message', arguments: args } }, CallToolResultSchema, { timeout: 20_000 })) as { structuredContent?: Summary }).structuredContent!;
    const a2a = async (text: string, ids: { taskId: string; contextId?: string }) => {
      const res = await fetch(`${gw.url}/a2a/steps-agent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...ids } } }),
      });
      return { workflowId: res.headers.get('x-workflow-id'), body: (await res.json()) as { result?: { task?: { status?: { state?: string } } }; error?: unknown } };
    };
    try {
      const first = await send({ message: 'steps:2 parent' });
      expect(first.state).toBe('input-required');
      const second = await send({ message: 'red', taskId: first.taskId, contextId: first.contextId });
      expect(second).toMatchObject({ taskId: first.taskId, state: 'completed' });

      // A second task from MCP, answered by the same agent through /a2a/steps-agent.
      const other = await send({ message: 'steps:1 other' });
      expect(other.state).toBe('input-required');
      const answered = await a2a('green', { taskId: other.taskId!, contextId: other.contextId });
      expect(answered.workflowId).toBe(wf);
      expect(answered.body.result?.task?.status?.state).toBe('TASK_STATE_COMPLETED');
      // A follow-up on the first task through /a2a joins the workflow too (the agent refuses it: the task is done).
      expect((await a2a('again', { taskId: first.taskId! })).workflowId).toBe(wf);

      const t = (await (await fetch(`${gw.url}/admin/api/workflows/${wf}`)).json()) as { steps: Array<{ step: number; parentStep: number | null; kind: string; server: string; tool: string; outcome: string }> };
      expect(t.steps).toEqual([
        expect.objectContaining({ step: 1, parentStep: null, kind: 'tools/call', server: 'steps-agent', tool: 'send_message', outcome: 'ok' }),
        expect.objectContaining({ step: 2, parentStep: 1, kind: 'tools/call', server: 'steps-agent', tool: 'send_message', outcome: 'ok' }),
        expect.objectContaining({ step: 3, parentStep: null, kind: 'tools/call', server: 'steps-agent', tool: 'send_message', outcome: 'ok' }),
        expect.objectContaining({ step: 4, parentStep: 3, kind: 'a2a/message', server: 'steps-agent', tool: 'SendMessage', outcome: 'ok' }),
        expect.objectContaining({ step: 5, parentStep: 1, kind: 'a2a/message', server: 'steps-agent', tool: 'SendMessage' }),
      ]);
    } finally {
      await own.close();
    }
  });

  it('the calls are steps of the session workflow, visible in the admin API tree', async () => {
    const list = (await (await fetch(`${gw.url}/admin/api/workflows?agent=local`)).json()) as { workflows: Array<{ id: string }> };
    const trees = await Promise.all(
      list.workflows.map(async (w) => (await (await fetch(`${gw.url}/admin/api/workflows/${w.id}`)).json()) as { steps: Array<{ server: string; tool: string; outcome: string }> }),
    );
    const steps = trees.flatMap((t) => t.steps).filter((s) => s.server === 'echo-agent' || s.server === 'steps-agent');
    expect(steps).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ server: 'echo-agent', tool: 'send_message', outcome: 'ok' }),
        expect.objectContaining({ server: 'echo-agent', tool: 'get_task', outcome: 'ok' }),
        expect.objectContaining({ server: 'steps-agent', tool: 'send_message', outcome: 'ok' }),
      ]),
    );
  });
});

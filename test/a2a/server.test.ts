/**
 * The gateway as an A2A agent, in process: mountA2a on an express app over a real Gateway with the fixture agents
 * federated, reached by an @a2a-js/sdk client and by raw 0.3 requests. A fake authenticate stands in for identity,
 * so policy (a2a.allow) is checked here with a caller that carries an agents.d manifest.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Role, TaskState, type Message, type SendMessageRequest, type StreamResponse, type Task } from '@a2a-js/sdk';
import { ClientFactory, type Client } from '@a2a-js/sdk/client';
import { loadGatewayConfig } from '../../src/config/index.js';
import type { AgentManifest } from '../../src/config/types.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { MemoryWorkflows } from '../../src/gateway/memory-workflows.js';
import type { Caller, Step, StepOutcome } from '../../src/gateway/types.js';
import { mountA2a } from '../../src/downstream/a2a-server.js';
import { scratch, stopAll } from '../helpers/gateway.js';
import { a2aManifest, silentLog, startAgents, type RunningAgents } from './agents.js';

const TOKEN = 'sekret';
let agents: RunningAgents;
let statsFile: string;
let gw: Gateway;
let server: http.Server;
let base: string;
let localMode = true;
const recorded: Array<{ step: Step; outcome: StepOutcome }> = [];

function agentManifest(id: string, a2aAllow: string[]): AgentManifest {
  return {
    id,
    credentials: { apiKeys: [] },
    tools: { allow: [], deny: [], rules: [] },
    a2a: { allow: a2aAllow },
    models: { allow: [], deny: [] },
    delegation: { agents: [], maxDepth: 0, maxChildren: 0 },
    limits: {},
    source: { file: `/virtual/agents.d/${id}.yaml`, line: 1 },
  };
}

const narrow: Caller = { agentId: 'narrow', principal: 'narrow', agent: agentManifest('narrow', ['echo-*']), chain: ['narrow'], via: 'apikey' };
const local: Caller = { agentId: 'local', principal: 'local', chain: ['local'], via: 'local' };

function userMessage(text: string, extra: Partial<Message> = {}): SendMessageRequest {
  return {
    tenant: '',
    message: { messageId: randomUUID(), role: Role.ROLE_USER, parts: [{ content: { $case: 'text', value: text }, mediaType: 'text/plain', filename: '', metadata: undefined }], contextId: '', taskId: '', metadata: undefined, extensions: [], referenceTaskIds: [], ...extra },
    configuration: undefined,
    metadata: undefined,
  };
}

/** The trailing slash matters: the SDK resolves the card path relative to the base URL. */
function clientFor(name: string): Promise<Client> {
  return new ClientFactory().createFromUrl(`${base}/a2a/${name}/`);
}

const textOf = (t: Task) => (t.status?.message?.parts ?? []).map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');

async function rawRpc(path: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

function statsCount(agent: string): number {
  return readFileSync(statsFile, 'utf8').trim().split('\n').filter((l) => (JSON.parse(l) as { agent: string }).agent === agent).length;
}

beforeAll(async () => {
  const dir = scratch('a2a-server-');
  statsFile = join(dir, 'stats.jsonl');
  agents = await startAgents(['--auth-token', TOKEN, '--stats-file', statsFile]);
  const { config } = loadGatewayConfig(undefined, {}, { cwd: dir });
  const auth = { Authorization: `Bearer ${TOKEN}` };
  gw = new Gateway({ config, log: silentLog, workflows: new MemoryWorkflows(), sinks: [{ record: (step, outcome) => void recorded.push({ step, outcome }) }] });
  await gw.applyServers(
    new Map([
      ['echo-agent', a2aManifest('echo-agent', agents.echo, { headers: auth })],
      ['steps-agent', a2aManifest('steps-agent', `${agents.steps}/.well-known/agent-card.json`, { headers: auth })],
    ]),
  );
  const app = express();
  mountA2a(app, {
    gateway: gw,
    authenticate: (req) => ({ ok: true, caller: req.headers['x-test-agent'] === 'narrow' ? narrow : local }),
    localMode: () => localMode,
  });
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await gw?.close();
  await agents?.stop();
  await stopAll();
});

describe('cards', () => {
  it('the gateway card has one skill per federated agent, its endpoint, and no security scheme in local mode', async () => {
    const card = (await (await fetch(`${base}/.well-known/agent-card.json`)).json()) as Record<string, any>;
    expect(card.name).toBe('Switchyard');
    expect(card.capabilities.streaming).toBe(true);
    expect(card.supportedInterfaces[0]).toMatchObject({ url: `${base}/a2a`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' });
    expect(card.skills.map((s: { id: string }) => s.id).sort()).toEqual(['echo-agent', 'steps-agent']);
    expect(card.skills.find((s: { id: string }) => s.id === 'steps-agent').description).toContain('Stepwise work');
    expect(card.securitySchemes ?? {}).toEqual({});
  });

  it('with auth configured the cards declare a bearer scheme', async () => {
    localMode = false;
    try {
      const card = (await (await fetch(`${base}/a2a/echo-agent/.well-known/agent-card.json`)).json()) as Record<string, any>;
      expect(card.securitySchemes.bearer.httpAuthSecurityScheme.scheme).toBe('Bearer');
      expect(card.securityRequirements).toEqual([{ schemes: { bearer: {} } }]);
    } finally {
      localMode = true;
    }
  });

  it("an agent's card is its own, rewritten to point at the gateway; 0.3 callers get the 0.3 shape", async () => {
    const card = (await (await fetch(`${base}/a2a/steps-agent/.well-known/agent-card.json`)).json()) as Record<string, any>;
    expect(card.name).toBe('steps-agent');
    expect(card.supportedInterfaces.map((i: { url: string }) => i.url)).toEqual([`${base}/a2a/steps-agent`, `${base}/a2a/steps-agent`]);
    expect(card.skills[0].name).toBe('Stepwise work');
    expect(card.capabilities.streaming).toBe(true);
    const old = (await (await fetch(`${base}/a2a/steps-agent/.well-known/agent-card.json`, { headers: { 'A2A-Version': '0.3' } })).json()) as Record<string, any>;
    expect(old).toMatchObject({ name: 'steps-agent', url: `${base}/a2a/steps-agent`, preferredTransport: 'JSONRPC', protocolVersion: '0.3' });
  });

  it('an unknown agent is a 404 with the names that exist', async () => {
    const res = await fetch(`${base}/a2a/nobody`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).toContain('echo-agent, steps-agent');
    expect((await fetch(`${base}/a2a/nobody/.well-known/agent-card.json`)).status).toBe(404);
  });
});

describe('an @a2a-js/sdk client through /a2a/{name}', () => {
  it('blocking send returns the completed task, and the step is recorded in a new workflow', async () => {
    const client = await clientFor('echo-agent');
    const reply = (await client.sendMessage(userMessage('hello gateway'))) as Task;
    expect(reply.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(reply)).toBe('echo: hello gateway');
    const rec = recorded.find((r) => r.step.args?.message === 'hello gateway')!;
    expect(rec.step).toMatchObject({ kind: 'a2a/message', server: 'echo-agent', target: 'SendMessage', stepNo: 1 });
    expect(rec.outcome.outcome).toBe('ok');
  });

  it('streaming relays each event as it arrives, before the task stops for input', async () => {
    const client = await clientFor('steps-agent');
    const events: Array<{ at: number; event: StreamResponse }> = [];
    for await (const event of client.sendMessageStream(userMessage('steps:5 stream'))) events.push({ at: Date.now(), event });
    const working = events.filter((e) => e.event.payload?.$case === 'statusUpdate' && e.event.payload.value.status?.state === TaskState.TASK_STATE_WORKING);
    expect(working).toHaveLength(5);
    const last = events.at(-1)!;
    expect(last.event.payload?.$case === 'statusUpdate' && last.event.payload.value.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    // Five steps ~100 ms apart: a buffering relay would deliver them all at once, at the end.
    expect(last.at - working[0]!.at).toBeGreaterThanOrEqual(300);
  });

  it('a follow-up on the task completes it in the same workflow, under the step that started it', async () => {
    const client = await clientFor('steps-agent');
    let task: Task | undefined;
    for await (const e of client.sendMessageStream(userMessage('steps:1 follow'))) if (e.payload?.$case === 'task') task = e.payload.value;
    const done = (await client.sendMessage(userMessage('7', { taskId: task!.id, contextId: task!.contextId }))) as Task;
    expect(done.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(done)).toBe('done with 7');
    const first = recorded.find((r) => r.step.args?.message === 'steps:1 follow')!.step;
    const second = recorded.find((r) => r.step.args?.message === '7')!.step;
    expect(second.workflowId).toBe(first.workflowId);
    expect(second.parentStep).toBe(first.stepNo);
    expect(second.stepNo).toBe(first.stepNo + 1);
    expect(gw.workflows.state(first.workflowId)).toBe('done');
    const got = await client.getTask({ tenant: '', id: task!.id, historyLength: 0 });
    expect(got.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
  });

  it('cancel stops a running task', async () => {
    const client = await clientFor('steps-agent');
    const stream = client.sendMessageStream(userMessage('steps:50 cancel me'));
    const first = await stream.next();
    const task = (first.value as StreamResponse).payload!.value as Task;
    const cancelled = await client.cancelTask({ tenant: '', id: task.id, metadata: undefined });
    expect(cancelled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    await stream.return(undefined);
    expect((await client.getTask({ tenant: '', id: task.id, historyLength: 0 })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect(recorded.some((r) => r.step.target === 'CancelTask' && r.step.args?.taskId === task.id && r.outcome.outcome === 'ok')).toBe(true);
  });

  it('resubscribe picks up a running task after the first stream was dropped', async () => {
    const client = await clientFor('steps-agent');
    const stream = client.sendMessageStream(userMessage('steps:6 resubscribe'));
    const task = ((await stream.next()).value as StreamResponse).payload!.value as Task;
    await stream.return(undefined);
    const states: TaskState[] = [];
    for await (const e of client.resubscribeTask({ tenant: '', id: task.id })) {
      if (e.payload?.$case === 'statusUpdate') states.push(e.payload.value.status!.state);
      if (e.payload?.$case === 'task') states.push(e.payload.value.status!.state);
    }
    expect(states.at(-1)).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(states).toContain(TaskState.TASK_STATE_WORKING);
  });

  it('unknown tasks come back as A2A TaskNotFound (-32001)', async () => {
    const res = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 5, method: 'GetTask', params: { id: 'no-such-task' } });
    expect((res.json.error as { code: number }).code).toBe(-32001);
  });
});

describe('0.3 callers, routing and policy', () => {
  it('a raw message/send (0.3 names and shapes) is answered in the 0.3 shape, and tasks/get works too', async () => {
    const send = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 'old-1', method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'text', text: 'from the past' }] } } });
    const task = send.json.result as { kind: string; id: string; status: { state: string; message: { parts: Array<{ kind: string; text?: string }> } } };
    expect(send.json.id).toBe('old-1');
    expect(task.kind).toBe('task');
    expect(task.status.state).toBe('completed');
    expect(task.status.message.parts[0]).toEqual({ kind: 'text', text: 'echo: from the past' });
    expect(send.headers.get('x-workflow-id')).toBeTruthy();
    const get = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 'old-2', method: 'tasks/get', params: { id: task.id } });
    expect((get.json.result as { status: { state: string } }).status.state).toBe('completed');
  });

  it('the gateway endpoint /a2a routes by message.metadata.agent, then by the task it has seen', async () => {
    const send = await rawRpc('/a2a', { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'routed' }], metadata: { agent: 'echo-agent' } } } });
    const task = (send.json.result as { task: { id: string; status: { state: string } } }).task;
    expect(task.status.state).toBe('TASK_STATE_COMPLETED');
    const get = await rawRpc('/a2a', { jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: task.id } });
    expect((get.json.result as { id: string }).id).toBe(task.id);
    const unnamed = await rawRpc('/a2a', { jsonrpc: '2.0', id: 3, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'where to?' }] } } });
    expect((unnamed.json.error as { code: number; message: string }).message).toContain('echo-agent, steps-agent');
  });

  it('a2a.allow refuses an agent the caller may not message (-32030 policy_denied) before it reaches the agent', async () => {
    const before = statsCount('steps-agent');
    const refused = await rawRpc('/a2a/steps-agent', { jsonrpc: '2.0', id: 9, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'let me in' }] } } }, { 'x-test-agent': 'narrow' });
    const error = refused.json.error as { code: number; data: { reason: string; workflowId: string } };
    expect(error.code).toBe(-32030);
    expect(error.data.reason).toBe('policy_denied');
    expect(error.data.workflowId).toBe(refused.headers.get('x-workflow-id'));
    expect(statsCount('steps-agent')).toBe(before);
    expect(recorded.some((r) => r.step.args?.message === 'let me in' && r.outcome.outcome === 'refused' && r.outcome.reason === 'policy_denied')).toBe(true);
    const reads = await rawRpc('/a2a/steps-agent', { jsonrpc: '2.0', id: 10, method: 'GetTask', params: { id: 'x' } }, { 'x-test-agent': 'narrow' });
    expect((reads.json.error as { data: { reason: string } }).data.reason).toBe('policy_denied');
    const allowed = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 11, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'ok?' }] } } }, { 'x-test-agent': 'narrow' });
    expect((allowed.json.result as { task: { status: { state: string } } }).task.status.state).toBe('TASK_STATE_COMPLETED');
  });

  it("callers are kept apart: another agent's task is not found, and ListTasks shows only one's own", async () => {
    const mine = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 20, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'narrow owns this' }] } } }, { 'x-test-agent': 'narrow' });
    const ownTask = (mine.json.result as { task: { id: string } }).task.id;
    const theirs = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 21, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'local owns this' }] } } });
    const foreignId = (theirs.json.result as { task: { id: string } }).task.id;
    const local = (await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 21, method: 'ListTasks', params: {} })).json.result as { tasks: Array<{ id: string }> };
    expect(local.tasks.map((t) => t.id)).toEqual(expect.arrayContaining([ownTask, foreignId]));
    const peek = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 22, method: 'GetTask', params: { id: foreignId } }, { 'x-test-agent': 'narrow' });
    expect((peek.json.error as { code: number }).code).toBe(-32001);
    const listed = (await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 23, method: 'ListTasks', params: {} }, { 'x-test-agent': 'narrow' })).json.result as { tasks: Array<{ id: string }> };
    expect(listed.tasks.map((t) => t.id)).toContain(ownTask);
    expect(listed.tasks.map((t) => t.id)).not.toContain(foreignId);
    expect(local.tasks.length).toBeGreaterThan(listed.tasks.length);
  });

  it('a task an MCP call started: CancelTask by the same agent joins that workflow under the call; another agent finds no task', async () => {
    const workflowId = gw.workflows.begin({ caller: local, kind: 'mcp' });
    const stepNo = await gw.workflows.nextStep(workflowId);
    const taskId = `mcp-task-${randomUUID()}`;
    await gw.a2a.owners.claim('echo-agent', 'task', taskId, { workflowId, stepNo, agentId: 'local' });
    const foreign = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 30, method: 'CancelTask', params: { id: taskId } }, { 'x-test-agent': 'narrow' });
    expect((foreign.json.error as { code: number }).code).toBe(-32001);
    expect(recorded.some((r) => r.step.args?.taskId === taskId)).toBe(false);
    const own = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 31, method: 'CancelTask', params: { id: taskId } });
    expect(own.headers.get('x-workflow-id')).toBe(workflowId);
    const step = recorded.find((r) => r.step.args?.taskId === taskId)!.step;
    expect(step).toMatchObject({ kind: 'a2a/message', target: 'CancelTask', workflowId, stepNo: stepNo + 1, parentStep: stepNo });
  });

  it('bad requests get JSON-RPC errors that say what to send', async () => {
    const parse = await fetch(`${base}/a2a/echo-agent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(parse.status).toBe(400);
    expect(((await parse.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const unknown = await rawRpc('/a2a/echo-agent', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} });
    expect((unknown.json.error as { code: number }).code).toBe(-32601);
    const get = await fetch(`${base}/a2a/echo-agent`);
    expect(get.status).toBe(405);
  });
});

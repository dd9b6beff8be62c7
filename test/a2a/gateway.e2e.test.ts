/**
 * The gateway as an A2A agent, end to end through a real gateway process (needs mountA2a wired in src/app.ts):
 * an @a2a-js/sdk client on /a2a/{name}, a 0.3-named raw request, and the A2A steps in the admin API's workflow tree.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Role, TaskState, type SendMessageRequest, type StreamResponse, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import { startGateway, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { startAgents, type RunningAgents } from './agents.js';

let agents: RunningAgents;
let gw: RunningGateway;
/** Workflow ids the gateway named in X-Workflow-Id, by the message text that started them. */
const workflowOf = new Map<string, string>();

interface StepView {
  step: number;
  parentStep: number | null;
  kind: string;
  server: string | null;
  tool: string;
  outcome: string;
}

function userMessage(text: string, ids: { taskId?: string; contextId?: string } = {}): SendMessageRequest {
  return {
    tenant: '',
    message: { messageId: randomUUID(), role: Role.ROLE_USER, parts: [{ content: { $case: 'text', value: text }, mediaType: 'text/plain', filename: '', metadata: undefined }], contextId: ids.contextId ?? '', taskId: ids.taskId ?? '', metadata: undefined, extensions: [], referenceTaskIds: [] },
    configuration: undefined,
    metadata: undefined,
  };
}

/** An SDK client whose fetch notes the X-Workflow-Id of each answer. */
async function clientFor(name: string): Promise<Client> {
  const fetchImpl: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const wf = res.headers.get('x-workflow-id');
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { params?: { message?: { parts?: Array<{ text?: string }> } } }) : undefined;
    const text = body?.params?.message?.parts?.[0]?.text;
    if (wf && text) workflowOf.set(text, wf);
    return res;
  };
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [new JsonRpcTransportFactory({ fetchImpl })] }));
  return factory.createFromUrl(`${gw.url}/a2a/${name}/`);
}

async function tree(workflowId: string): Promise<{ kind: string; steps: StepView[] }> {
  const res = await fetch(`${gw.url}/admin/api/workflows/${workflowId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { kind: string; steps: StepView[] };
}

beforeAll(async () => {
  agents = await startAgents();
  gw = await startGateway({
    servers: {
      'echo-agent': { transport: 'a2a', url: agents.echo },
      'steps-agent': { transport: 'a2a', url: agents.steps },
    },
  });
  const card = await fetch(`${gw.url}/.well-known/agent-card.json`);
  if (card.status === 404) throw new Error('GET /.well-known/agent-card.json is 404: mountA2a is not wired in src/app.ts yet (see src/downstream/a2a-server.ts).');
});

afterAll(async () => {
  await stopAll();
  await agents?.stop();
});

describe('the gateway as an A2A agent (real process)', () => {
  it('publishes its card with one skill per agent, pointing at its own /a2a endpoint', async () => {
    const card = (await (await fetch(`${gw.url}/.well-known/agent-card.json`)).json()) as { name: string; supportedInterfaces: Array<{ url: string }>; skills: Array<{ id: string }> };
    expect(card.name).toBe('Switchyard');
    expect(card.supportedInterfaces[0]!.url).toBe(`${gw.url}/a2a`);
    expect(card.skills.map((s) => s.id).sort()).toEqual(['echo-agent', 'steps-agent']);
  });

  it('blocking send, streaming with events before the task ends, follow-up, get — one workflow in the tree', async () => {
    const echo = await clientFor('echo-agent');
    const done = (await echo.sendMessage(userMessage('e2e hello'))) as Task;
    expect(done.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);

    const steps = await clientFor('steps-agent');
    const seen: Array<{ at: number; event: StreamResponse }> = [];
    for await (const event of steps.sendMessageStream(userMessage('steps:4 e2e'))) seen.push({ at: Date.now(), event });
    const task = seen[0]!.event.payload!.value as Task;
    const last = seen.at(-1)!;
    expect(last.event.payload?.$case === 'statusUpdate' && last.event.payload.value.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(last.at - seen[1]!.at).toBeGreaterThanOrEqual(200);

    const finished = (await steps.sendMessage(userMessage('green', { taskId: task.id, contextId: task.contextId }))) as Task;
    expect(finished.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect((await steps.getTask({ tenant: '', id: task.id, historyLength: 0 })).status?.state).toBe(TaskState.TASK_STATE_COMPLETED);

    const wf = workflowOf.get('steps:4 e2e')!;
    expect(workflowOf.get('green')).toBe(wf);
    const t = await tree(wf);
    expect(t.kind).toBe('a2a');
    expect(t.steps).toEqual([
      expect.objectContaining({ step: 1, parentStep: null, kind: 'a2a/message', server: 'steps-agent', tool: 'SendStreamingMessage', outcome: 'ok' }),
      expect.objectContaining({ step: 2, parentStep: 1, kind: 'a2a/message', server: 'steps-agent', tool: 'SendMessage', outcome: 'ok' }),
    ]);
    const echoTree = await tree(workflowOf.get('e2e hello')!);
    expect(echoTree.steps).toEqual([expect.objectContaining({ kind: 'a2a/message', server: 'echo-agent', tool: 'SendMessage' })]);
  });

  it('cancel and resubscribe', async () => {
    const steps = await clientFor('steps-agent');
    const running = steps.sendMessageStream(userMessage('steps:8 resub'));
    const task = ((await running.next()).value as StreamResponse).payload!.value as Task;
    await running.return(undefined);
    const states: TaskState[] = [];
    for await (const e of steps.resubscribeTask({ tenant: '', id: task.id })) {
      if (e.payload?.$case === 'statusUpdate') states.push(e.payload.value.status!.state);
    }
    expect(states.at(-1)).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);

    const doomed = steps.sendMessageStream(userMessage('steps:100 doomed'));
    const victim = ((await doomed.next()).value as StreamResponse).payload!.value as Task;
    expect((await steps.cancelTask({ tenant: '', id: victim.id, metadata: undefined })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    await doomed.return(undefined);
    // The streaming step is recorded when its stream ends, which the gateway learns a moment after we drop it.
    const tools = await waitFor(async () => {
      const t = await tree(workflowOf.get('steps:100 doomed')!);
      return t.steps.length === 2 ? t.steps.map((s) => s.tool) : undefined;
    }, { what: 'both steps of the cancelled task in its workflow' });
    expect(tools).toEqual(['SendStreamingMessage', 'CancelTask']);
  });

  it('accepts a 0.3-named request (message/send) and answers in the 0.3 shape', async () => {
    const res = await fetch(`${gw.url}/a2a/echo-agent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'text', text: 'v0.3 says hi' }] } } }),
    });
    const body = (await res.json()) as { result: { kind: string; status: { state: string; message: { parts: Array<{ text: string }> } } } };
    expect(body.result.kind).toBe('task');
    expect(body.result.status.state).toBe('completed');
    expect(body.result.status.message.parts[0]!.text).toBe('echo: v0.3 says hi');
    const t = await tree(res.headers.get('x-workflow-id')!);
    expect(t.steps[0]).toMatchObject({ kind: 'a2a/message', server: 'echo-agent', tool: 'SendMessage', outcome: 'ok' });
  });
});

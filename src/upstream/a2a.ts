/**
 * An A2A agent as an upstream MCP server. The transport answers MCP itself, in process: `initialize` reads the
 * agent card, `tools/list` offers `send_message` and `get_task`, and `tools/call` drives the agent through the
 * @a2a-js/sdk client (streaming when the card allows, so status updates become progress notifications).
 * Because the gateway sees an ordinary MCP server, naming, identity, policy, limits and audit apply unchanged.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Role, type Message, type SendMessageRequest, type Task, type TaskArtifactUpdateEvent } from '@a2a-js/sdk';
import { A2AError, TaskNotFoundError } from '@a2a-js/sdk/errors';
import { ClientFactory, JsonRpcTransportFactory, RestTransportFactory, type Client, type RequestOptions } from '@a2a-js/sdk/client';
import type { ServerManifest } from '../config/types.js';
import type { Step } from '../gateway/types.js';
import {
  errorResponse,
  isNotification,
  isRequest,
  resultResponse,
  RpcErrorCode,
  type Params,
  type RpcId,
  type RpcMessage,
  type RpcRequest,
} from '../util/jsonrpc.js';
import { AgentCardError, resolveAgent, type ResolvedAgent } from './a2a-card.js';
import { memoryA2aContext, type A2aContext } from './a2a-context.js';
import { EgressRefused } from './a2a-egress.js';
import { refusedIds } from './a2a-owners.js';
import { describeAgent, errorResult, isSettled, stateName, textOf, toCallToolResult, type CallToolResult } from './a2a-results.js';
import { describeNetworkError, unavailable, UpstreamError } from './errors.js';
import type { SendOptions, UpstreamTransport } from './transport.js';
import { maskUrls, safeUrl } from '../util/shown.js';

const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 2000;

const SUMMARY_SCHEMA = {
  type: 'object',
  properties: {
    taskId: { type: 'string' },
    contextId: { type: 'string' },
    state: { type: 'string', description: 'submitted, working, input-required, auth-required, completed, failed, canceled or rejected' },
    text: { type: 'string' },
  },
  required: ['state', 'text'],
};

interface InFlightCall {
  controller: AbortController;
  taskId?: string;
  /** The client cancelled before the task id was known: cancel the task as soon as it is. */
  cancelWhenKnown?: boolean;
}

/** What a call reports while it runs: `progress` is emitted only when the client sent a progress token. */
interface CallContext {
  id: RpcId;
  progress: (message: string) => void;
  options: RequestOptions;
  call: InFlightCall;
  /** The gateway step of this call: the task it starts hangs under it. */
  step?: Step;
}

class AbortedCall extends Error {}

export class A2aTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  private agent?: ResolvedAgent;
  private client?: Client;
  private closed = false;
  private readonly calls = new Map<RpcId, InFlightCall>();

  constructor(private readonly manifest: ServerManifest, private readonly log: Logger, private readonly a2a: A2aContext = memoryA2aContext()) {}

  /** Read the agent card first: an agent that cannot be found fails the start with a reason, not initialize. */
  async start(): Promise<void> {
    try {
      await resolveAgent(this.manifest, this.a2a.egress);
    } catch (err) {
      if (!(err instanceof AgentCardError)) throw err;
      throw new UpstreamError(this.manifest.name, 'unreachable', 'its agent card could not be read', { operator: err.detail, field: '`url` and `headers`' });
    }
  }

  async send(message: RpcMessage, options?: SendOptions): Promise<void> {
    if (this.closed) throw new UpstreamError(this.manifest.name, 'closed', 'its connection was closed');
    if (isRequest(message)) {
      this.answer(message, options).catch((err: Error) => this.reply(errorResponse(message.id, RpcErrorCode.InternalError, `A2A bridge failed: ${err.message}`)));
      return;
    }
    if (isNotification(message) && message.method === 'notifications/cancelled') this.cancel(options?.relatedRequest ?? (message.params?.requestId as RpcId | undefined));
    // notifications/initialized and responses need nothing: this server never asks the client anything.
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const call of this.calls.values()) call.controller.abort(new AbortedCall('session closed'));
    this.calls.clear();
  }

  private reply(msg: RpcMessage, relatedTo?: RpcId): void {
    if (this.closed) return;
    queueMicrotask(() => this.onmessage?.(msg, relatedTo));
  }

  private async answer(req: RpcRequest, options?: SendOptions): Promise<void> {
    switch (req.method) {
      case 'initialize':
        return this.initialize(req);
      case 'ping':
        return this.reply(resultResponse(req.id, {}));
      case 'tools/list':
        return this.listTools(req);
      case 'tools/call':
        return this.callTool(req, options?.step, options?.headers);
      default:
        return this.reply(errorResponse(req.id, RpcErrorCode.MethodNotFound, `Method not found: ${req.method} (an A2A agent offers only tools)`));
    }
  }

  private async initialize(req: RpcRequest): Promise<void> {
    let agent: ResolvedAgent;
    try {
      agent = await resolveAgent(this.manifest, this.a2a.egress);
      const fetchImpl = this.a2a.egress.fetchFor(this.manifest);
      const factory = new ClientFactory({
        transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } }), new RestTransportFactory({ fetchImpl, legacyCompat: { enabled: true } })],
        clientConfig: { polling: true },
      });
      this.client = await factory.createFromAgentCard(agent.card);
    } catch (err) {
      if (err instanceof AgentCardError) this.log.warn({ err: err.detail }, err.detail);
      return this.reply(errorResponse(req.id, RpcErrorCode.InternalError, err instanceof AgentCardError ? err.message : maskUrls((err as Error).message)));
    }
    this.agent = agent;
    const requested = req.params?.protocolVersion;
    this.reply(
      resultResponse(req.id, {
        protocolVersion: typeof requested === 'string' ? requested : '2025-11-25',
        capabilities: { tools: {} },
        serverInfo: { name: agent.card.name || this.manifest.name, version: agent.card.version || '0', title: agent.card.name },
        instructions: describeAgent(agent.card),
      }),
    );
  }

  private listTools(req: RpcRequest): void {
    const card = this.agent?.card;
    if (!card) return this.reply(errorResponse(req.id, RpcErrorCode.InvalidRequest, 'initialize first'));
    const tools = [
      {
        name: 'send_message',
        title: `Message ${card.name}`,
        description: describeAgent(card),
        inputSchema: {
          type: 'object',
          properties: {
            message: { type: 'string', description: 'What to tell the agent.' },
            contextId: { type: 'string', description: 'Continue this conversation (from an earlier reply).' },
            taskId: { type: 'string', description: 'Answer this task (when its state is input-required).' },
          },
          required: ['message'],
        },
        outputSchema: SUMMARY_SCHEMA,
        annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
      },
      {
        name: 'get_task',
        title: `Task status at ${card.name}`,
        description: `Current state and reply of a task of the A2A agent "${card.name}" (taskId from send_message).`,
        inputSchema: { type: 'object', properties: { taskId: { type: 'string' } }, required: ['taskId'] },
        outputSchema: SUMMARY_SCHEMA,
        annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: true },
      },
    ];
    this.reply(resultResponse(req.id, { tools }));
  }

  private async callTool(req: RpcRequest, step?: Step, headers?: Readonly<Record<string, string>>): Promise<void> {
    const client = this.client;
    if (!client) return this.reply(errorResponse(req.id, RpcErrorCode.InvalidRequest, 'initialize first'));
    const name = req.params?.name;
    const args = (req.params?.arguments ?? {}) as Params;
    if (name !== 'send_message' && name !== 'get_task') return this.reply(errorResponse(req.id, RpcErrorCode.InvalidParams, `Unknown tool: ${String(name)}`));
    const invalid = name === 'send_message' ? checkSendArgs(args) : typeof args.taskId === 'string' && args.taskId ? undefined : 'taskId (a string) is required';
    if (invalid) return this.reply(resultResponse(req.id, errorResult(`Invalid arguments for ${name}: ${invalid}.`)));

    // A task or context another agent started is answered as if it did not exist (the agent sees only the gateway).
    if (step) {
      const refused = await refusedIds(this.a2a.owners, this.manifest.name, step.caller, { taskId: args.taskId as string | undefined, contextId: args.contextId as string | undefined });
      if (refused === 'task') return this.reply(this.failure(req.id, new TaskNotFoundError(`Task not found: ${String(args.taskId)}`)));
      if (refused === 'context') return this.reply(resultResponse(req.id, errorResult(`Invalid arguments for ${name}: contextId ${String(args.contextId)} cannot be continued; omit contextId to start a new conversation.`)));
    }
    const call: InFlightCall = { controller: new AbortController() };
    this.calls.set(req.id, call);
    const ctx: CallContext = { id: req.id, call, progress: this.progressFor(req), options: { signal: call.controller.signal, ...(headers ? { serviceParameters: headers } : {}) } };
    if (name === 'send_message' && step) {
      ctx.step = step;
      await this.followUp(step, args.taskId as string | undefined);
    }
    try {
      const reply = name === 'send_message' ? await this.sendMessage(client, args, ctx) : await client.getTask({ tenant: '', id: args.taskId as string, historyLength: 0 }, ctx.options);
      if (ctx.step) await this.remember(ctx.step, 'parts' in reply ? { taskId: reply.taskId, contextId: reply.contextId } : { taskId: reply.id, contextId: reply.contextId });
      this.reply(resultResponse(req.id, toCallToolResult(reply)));
    } catch (err) {
      if (call.controller.signal.aborted) return; // the session already answered the cancelled request
      this.reply(this.failure(req.id, err));
    } finally {
      this.calls.delete(req.id);
    }
  }

  /** A follow-up of a task an earlier call of this workflow started hangs under that call's step. */
  private async followUp(step: Step, taskId: string | undefined): Promise<void> {
    const origin = taskId ? await this.a2a.owners.ownerOf(this.manifest.name, 'task', taskId) : undefined;
    if (origin && origin.workflowId === step.workflowId && origin.stepNo !== step.stepNo) step.parentStep = origin.stepNo;
  }

  /** Note that this call's step started the task and context (unless an earlier step did). */
  private async remember(step: Step, ids: { taskId?: string; contextId?: string }): Promise<void> {
    if (step.stepNo === 0) return;
    const owner = { agentId: step.caller.agentId, workflowId: step.workflowId, stepNo: step.stepNo };
    const owners = this.a2a.owners;
    await Promise.all([ids.taskId ? owners.claim(this.manifest.name, 'task', ids.taskId, owner) : undefined, ids.contextId ? owners.claim(this.manifest.name, 'context', ids.contextId, owner) : undefined]);
  }

  private progressFor(req: RpcRequest): (message: string) => void {
    const token = (req.params?._meta as { progressToken?: string | number } | undefined)?.progressToken;
    if (token === undefined) return () => {};
    let n = 0;
    return (message) => this.reply({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: ++n, message } }, req.id);
  }

  private async sendMessage(client: Client, args: Params, ctx: CallContext): Promise<Task | Message> {
    const request: SendMessageRequest = {
      tenant: '',
      message: {
        messageId: randomUUID(),
        role: Role.ROLE_USER,
        parts: [{ content: { $case: 'text', value: args.message as string }, mediaType: 'text/plain', filename: '', metadata: undefined }],
        contextId: typeof args.contextId === 'string' ? args.contextId : '',
        taskId: typeof args.taskId === 'string' ? args.taskId : '',
        metadata: undefined,
        extensions: [],
        referenceTaskIds: [],
      },
      configuration: undefined,
      metadata: undefined,
    };
    let task: Task | undefined;
    if (this.agent?.card.capabilities?.streaming) {
      for await (const event of client.sendMessageStream(request, ctx.options)) {
        const p = event.payload;
        if (!p) continue;
        if (p.$case === 'message') return p.value;
        if (p.$case === 'task') task = p.value;
        else if (task && p.$case === 'statusUpdate') task = { ...task, status: p.value.status };
        else if (task && p.$case === 'artifactUpdate') task = withArtifact(task, p.value);
        else continue;
        this.observe(task, ctx, p.$case !== 'artifactUpdate');
      }
      if (!task) throw new Error('the agent closed its stream without a task or message');
      if (isSettled(task.status?.state)) return task;
    } else {
      const first = await client.sendMessage(request, ctx.options);
      if ('parts' in first) return first;
      task = first;
      this.observe(task, ctx, true);
    }
    return this.pollUntilSettled(client, task, ctx);
  }

  /** Non-streaming agents (and streams that end early): poll until the agent is done or waits for input. */
  private async pollUntilSettled(client: Client, task: Task, ctx: CallContext): Promise<Task> {
    let delay = POLL_FIRST_MS;
    let lastState = task.status?.state;
    while (!isSettled(task.status?.state)) {
      await sleep(delay, ctx.call.controller.signal);
      delay = Math.min(delay * 2, POLL_MAX_MS);
      task = await client.getTask({ tenant: '', id: task.id, historyLength: 0 }, ctx.options);
      this.observe(task, ctx, task.status?.state !== lastState);
      lastState = task.status?.state;
    }
    return task;
  }

  /** Learn the task id (a pending cancel fires now) and report a status change as progress. */
  private observe(task: Task, ctx: CallContext, report: boolean): void {
    if (!ctx.call.taskId && task.id) {
      ctx.call.taskId = task.id;
      if (ctx.step) void this.remember(ctx.step, { taskId: task.id, contextId: task.contextId }).catch((err: Error) => this.log.error({ err: err.message }, 'A2A task owner could not be recorded'));
      if (ctx.call.cancelWhenKnown) return this.cancelTask(ctx.call);
    }
    if (!report) return;
    const state = stateName(task.status?.state);
    const text = textOf(task.status?.message?.parts ?? []);
    ctx.progress(`${text || state} (task ${task.id}: ${state})`);
  }

  private cancel(requestId: RpcId | undefined): void {
    const call = requestId === undefined ? undefined : this.calls.get(requestId);
    if (!call) return;
    if (call.taskId) this.cancelTask(call);
    else call.cancelWhenKnown = true; // keep the stream open until the agent names the task
  }

  private cancelTask(call: InFlightCall): void {
    const taskId = call.taskId!;
    call.controller.abort(new AbortedCall('cancelled by client'));
    this.client?.cancelTask({ tenant: '', id: taskId, metadata: undefined }).then(
      () => this.log.debug({ taskId }, 'A2A task cancelled'),
      (err: Error) => this.log.warn({ taskId, err: err.message }, 'A2A task could not be cancelled'),
    );
  }

  /**
   * Agent-level errors are tool errors the model can read; an unreachable agent is upstream_unavailable. Callers
   * learn the agent's name and the kind of failure, never its URL: the details go to the log.
   */
  private failure(id: RpcId, err: unknown) {
    if (err instanceof A2AError) return resultResponse(id, errorResult(`Agent '${this.manifest.name}' answered with an error: ${err.message}${err.reason ? ` (${err.reason})` : ''}.`));
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const refused = e instanceof EgressRefused ? e : e.cause instanceof EgressRefused ? e.cause : undefined;
    if (refused) {
      this.log.warn({ url: safeUrl(refused.url), why: refused.why }, refused.message);
      return resultResponse(id, errorResult(refused.message));
    }
    this.log.warn({ err: maskUrls(e.message), cause: e.cause?.message ? maskUrls(e.cause.message) : undefined }, `calling A2A agent '${this.manifest.name}' failed`);
    if (e.name === 'TypeError' && e.cause) return unavailable(id, new UpstreamError(this.manifest.name, 'unreachable', describeNetworkError(e)));
    return resultResponse(id, errorResult(`Calling agent '${this.manifest.name}' failed; the gateway log has the details.`));
  }
}

function checkSendArgs(args: Params): string | undefined {
  if (typeof args.message !== 'string' || args.message === '') return 'message (a non-empty string) is required';
  for (const key of ['contextId', 'taskId'] as const) if (args[key] !== undefined && typeof args[key] !== 'string') return `${key} must be a string`;
  return undefined;
}

/** Apply an artifact update: a new artifact, a replacement, or parts appended to an earlier chunk. */
function withArtifact(task: Task, update: TaskArtifactUpdateEvent): Task {
  const a = update.artifact;
  if (!a) return task;
  const i = task.artifacts.findIndex((x) => x.artifactId === a.artifactId);
  const artifacts = [...task.artifacts];
  if (i < 0) artifacts.push(a);
  else artifacts[i] = update.append ? { ...artifacts[i]!, parts: [...artifacts[i]!.parts, ...a.parts] } : a;
  return { ...task, artifacts };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}


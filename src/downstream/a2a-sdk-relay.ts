/**
 * Relaying through the SDK where raw JSON-RPC cannot serve: A2A 0.3 callers (`message/send`, `tasks/get`, …), and
 * agents without a 1.0 JSON-RPC endpoint. The SDK's JSON-RPC handler for the caller's version parses the request,
 * our request handler carries it to the agent with the SDK client (which speaks whatever the agent's card offers),
 * and the answer goes back in the caller's own version.
 */
import type { ServerResponse } from 'node:http';
import type { AgentCard, Message, StreamResponse, Task } from '@a2a-js/sdk';
import { ClientFactory, JsonRpcTransportFactory, RestTransportFactory, type Client, type RequestOptions } from '@a2a-js/sdk/client';
import { LegacyJsonRpcTransportHandler } from '@a2a-js/sdk/compat/v0_3/server';
import { JsonRpcTransportError } from '@a2a-js/sdk/errors';
import { JsonRpcTransportHandler, ServerCallContext, type A2ARequestHandler } from '@a2a-js/sdk/server';
import type { ServerManifest } from '../config/types.js';
import { EgressRefused, type A2aEgress } from '../upstream/a2a-egress.js';
import { stateName } from '../upstream/a2a-results.js';
import { REFUSAL_CODE } from '../util/jsonrpc.js';
import { outcomeOf, SSE_HEADERS, writeJson, type RelayOutcome } from './a2a-relay.js';
import type { TaskObservation } from './a2a-steps.js';

type Handler = A2ARequestHandler;

const clients = new WeakMap<ServerManifest, WeakMap<AgentCard, Promise<Client>>>();

/** One SDK client per manifest and card (a reload or a refreshed card builds a new one). */
function clientFor(manifest: ServerManifest, card: AgentCard, egress: A2aEgress): Promise<Client> {
  let byCard = clients.get(manifest);
  if (!byCard) clients.set(manifest, (byCard = new WeakMap()));
  let client = byCard.get(card);
  if (!client) {
    const fetchImpl = egress.fetchFor(manifest);
    const factory = new ClientFactory({
      transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat: { enabled: true } }), new RestTransportFactory({ fetchImpl, legacyCompat: { enabled: true } })],
    });
    client = factory.createFromAgentCard(card);
    byCard.set(card, client);
  }
  return client;
}

/** A network failure reaching the agent (or a refused address) keeps the gateway's reason when the 0.3 layer renders it. */
function unreachable(server: string, err: unknown): never {
  const refused = err instanceof EgressRefused ? err : err instanceof Error && err.cause instanceof EgressRefused ? err.cause : undefined;
  if (refused) throw new JsonRpcTransportError({ jsonrpc: '2.0', id: null, error: { code: REFUSAL_CODE, message: refused.message, data: { reason: 'egress_refused', server } } });
  if (!(err instanceof TypeError)) throw err;
  const cause = (err as Error & { cause?: { code?: string } }).cause?.code;
  throw new JsonRpcTransportError({
    jsonrpc: '2.0',
    id: null,
    error: { code: REFUSAL_CODE, message: `A2A agent '${server}' is unavailable: it cannot be reached${cause ? ` (${cause})` : ''}; retry shortly.`, data: { reason: 'upstream_unavailable', server } },
  });
}

function note(seen: TaskObservation, reply: Task | Message): void {
  if ('parts' in reply) {
    seen.contextId = reply.contextId || seen.contextId;
    seen.taskId = reply.taskId || seen.taskId;
    seen.state ??= 'completed';
    return;
  }
  seen.taskId = reply.id;
  seen.contextId = reply.contextId;
  seen.state = stateName(reply.status?.state);
}

/** An A2ARequestHandler that forwards every call to the federated agent, noting what it learns about the task. */
function forwardingHandler(
  server: string,
  card: AgentCard,
  client: Client,
  options: RequestOptions,
  seen: TaskObservation,
  onTask?: (seen: TaskObservation) => Promise<void>,
  visible?: (taskId: string) => Promise<boolean>,
): Handler {
  const guard = async <T>(p: Promise<T>): Promise<T> => p.catch((err: unknown) => unreachable(server, err));
  async function* stream(events: AsyncGenerator<StreamResponse>) {
    try {
      for await (const event of events) {
        const p = event.payload;
        const known = seen.taskId;
        if (p?.$case === 'task' || p?.$case === 'message') note(seen, p.value);
        else if (p?.$case === 'statusUpdate') Object.assign(seen, { taskId: p.value.taskId, contextId: p.value.contextId, state: stateName(p.value.status?.state) });
        if (seen.taskId && seen.taskId !== known) void onTask?.(seen);
        yield event;
      }
    } catch (err) {
      unreachable(server, err);
    }
  }
  return {
    getAgentCard: async () => card,
    getAuthenticatedExtendedAgentCard: async () => card,
    sendMessage: async (params) => {
      const reply = await guard(client.sendMessage(params, options));
      note(seen, reply);
      if (seen.taskId) await onTask?.(seen);
      return reply;
    },
    sendMessageStream: (params) => stream(client.sendMessageStream(params, options)),
    resubscribe: (params) => stream(client.resubscribeTask(params, options)),
    getTask: async (params) => {
      const task = await guard(client.getTask(params, options));
      note(seen, task);
      return task;
    },
    cancelTask: async (params) => {
      const task = await guard(client.cancelTask(params, options));
      note(seen, task);
      await onTask?.(seen);
      return task;
    },
    listTasks: async (params) => {
      const page = await guard(client.listTasks(params, options));
      if (!visible) return page;
      const keep = await Promise.all(page.tasks.map((t) => visible(t.id)));
      const tasks = page.tasks.filter((_, i) => keep[i]);
      return tasks.length === page.tasks.length ? page : { ...page, tasks, totalSize: tasks.length };
    },
    createTaskPushNotificationConfig: (params) => guard(client.createTaskPushNotificationConfig(params, options)),
    getTaskPushNotificationConfig: (params) => guard(client.getTaskPushNotificationConfig(params, options)),
    listTaskPushNotificationConfigs: (params) => guard(client.listTaskPushNotificationConfig(params, options)),
    deleteTaskPushNotificationConfig: (params) => guard(client.deleteTaskPushNotificationConfig(params, options)),
  };
}

export interface SdkRelayCall {
  manifest: ServerManifest;
  egress: A2aEgress;
  card: AgentCard;
  body: Record<string, unknown>;
  /** Trace context for the agent. */
  headers: Record<string, string>;
  /** Headers for the caller (X-Workflow-Id). */
  replyHeaders: Record<string, string>;
  signal: AbortSignal;
  /** The caller's protocol version, which shapes the answer. */
  protocol: '0.3' | '1.0';
  /** Hears the task id as soon as a stream names it, and a unary answer's task before it is written. */
  onTask?: (seen: TaskObservation) => Promise<void>;
  /** ListTasks shows only the tasks this predicate keeps. */
  visible?: (taskId: string) => Promise<boolean>;
}

/** Answer one request: JSON for unary methods, SSE for the streaming ones. */
export async function relayThroughSdk(call: SdkRelayCall, res: ServerResponse): Promise<RelayOutcome> {
  const seen: TaskObservation = {};
  const client = await clientFor(call.manifest, call.card, call.egress);
  const handler = forwardingHandler(call.manifest.name, call.card, client, { signal: call.signal, serviceParameters: call.headers }, seen, call.onTask, call.visible);
  const context = new ServerCallContext({ requestedVersion: call.protocol });
  const legacy = call.protocol === '0.3';
  const mapError = legacy ? LegacyJsonRpcTransportHandler.mapToLegacyJSONRPCError : JsonRpcTransportHandler.mapToJSONRPCError;
  const answer = legacy ? await new LegacyJsonRpcTransportHandler(handler).handle(call.body, context) : await new JsonRpcTransportHandler(handler).handle(call.body, context);
  if (!(Symbol.asyncIterator in answer)) {
    writeJson(res, answer, call.replyHeaders);
    return outcomeOf(answer as unknown as Record<string, unknown>, seen);
  }
  let last: Record<string, unknown> = {};
  const iterator = answer[Symbol.asyncIterator]();
  let first: IteratorResult<Record<string, unknown>>;
  try {
    first = (await iterator.next()) as IteratorResult<Record<string, unknown>>;
  } catch (err) {
    const error = mapError(err);
    const body = { jsonrpc: '2.0', id: (call.body.id as string | number | undefined) ?? null, error };
    writeJson(res, body, call.replyHeaders);
    return outcomeOf(body, seen);
  }
  res.writeHead(200, { ...SSE_HEADERS, ...call.replyHeaders });
  res.flushHeaders();
  try {
    for (let r = first; !r.done; r = (await iterator.next()) as IteratorResult<Record<string, unknown>>) {
      last = r.value;
      res.write(`data: ${JSON.stringify(r.value)}\n\n`);
    }
  } catch (err) {
    last = { jsonrpc: '2.0', id: call.body.id ?? null, error: mapError(err) };
    if (!res.writableEnded) res.write(`event: error\ndata: ${JSON.stringify(last)}\n\n`);
  }
  if (!res.writableEnded) res.end();
  return outcomeOf(last.error ? last : {}, seen);
}

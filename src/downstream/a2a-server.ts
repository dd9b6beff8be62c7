/**
 * The gateway as an A2A agent. `GET /.well-known/agent-card.json` is the gateway's card; each federated agent lives
 * at `/a2a/{name}` (JSON-RPC POST) with its card rewritten at `/a2a/{name}/.well-known/agent-card.json`.
 * Every message is authenticated, becomes a Step (policy, guard chain, audit) and is relayed to the agent:
 * 1.0 callers as raw JSON-RPC, 0.3 callers through the SDK's 0.3 translation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { AgentCard } from '@a2a-js/sdk';
import { isLegacyJsonRpcMethod, legacyJsonRpcToV1Method } from '@a2a-js/sdk/compat/v0_3';
import { legacyAgentCardRouter } from '@a2a-js/sdk/compat/v0_3/server/express';
import type { ServerManifest } from '../config/types.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Caller, Refusal } from '../gateway/types.js';
import { chooseWorkflow } from '../identity/workflow-choice.js';
import { resolveAgent, type ResolvedAgent } from '../upstream/a2a-card.js';
import { unavailable } from '../upstream/errors.js';
import { errorResponse, REFUSAL_CODE, RpcErrorCode, type RpcId } from '../util/jsonrpc.js';
import { a2aRefusals } from './render/a2a.js';
import { gatewayCard, rewrittenCard, type FederatedAgent, type GatewaySecurity } from './a2a-cards.js';
import { relayThroughSdk } from './a2a-sdk-relay.js';
import { relayStream, relayUnary, upstreamFailure, writeJson, type RelayOutcome } from './a2a-relay.js';
import { a2aAllowed } from '../gateway/guards/a2a-allow.js';
import { A2aSteps, STEP_METHODS, type TaskObservation } from './a2a-steps.js';
import type { AuthResult } from './mcp-http.js';

export interface A2aServerDeps {
  gateway: Gateway;
  /** The same authentication as /mcp; `resourcePath` is `/a2a/{name}` (for the WWW-Authenticate challenge). */
  authenticate: (req: IncomingMessage, resourcePath: string) => AuthResult | Promise<AuthResult>;
  /** No issuer and no API key configured: the cards then declare no security scheme. */
  localMode: boolean | (() => boolean);
  /** Whether the caller may name the workflow it joins (X-Workflow-Id); default: agents with canSetWorkflow, and local without a manifest. */
  mayJoinWorkflow?: (caller: Caller) => boolean;
}

/** A2A 1.0 JSON-RPC methods; the 0.3 names map onto these. */
const V1_METHODS = new Set([
  'SendMessage',
  'SendStreamingMessage',
  'GetTask',
  'ListTasks',
  'CancelTask',
  'SubscribeToTask',
  'CreateTaskPushNotificationConfig',
  'GetTaskPushNotificationConfig',
  'ListTaskPushNotificationConfigs',
  'DeleteTaskPushNotificationConfig',
  'GetExtendedAgentCard',
]);
const STREAMING = new Set(['SendStreamingMessage', 'SubscribeToTask']);
const TASK_NOT_FOUND = -32001;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const CARD_PATH = '/.well-known/agent-card.json';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** What a request names, in either protocol version (0.3 and 1.0 share these field names). */
function namedIn(params: Json | undefined): { text?: string; taskId?: string; contextId?: string; agent?: string } {
  const message = obj(params?.message);
  const parts = Array.isArray(message?.parts) ? (message.parts as unknown[]) : [];
  const text = message ? parts.map((p) => str(obj(p)?.text) ?? '').join('') : undefined;
  return {
    text,
    taskId: str(message?.taskId) ?? str(params?.id) ?? str(params?.taskId),
    contextId: str(message?.contextId),
    agent: str(obj(message?.metadata)?.agent) ?? str(obj(params?.metadata)?.agent),
  };
}

class BadBody extends Error {
  constructor(readonly status: number, readonly code: number, message: string) {
    super(message);
  }
}

async function readJson(req: IncomingMessage & { body?: unknown }, limit: number): Promise<unknown> {
  if (req.body !== undefined && typeof req.body === 'object') return req.body; // a body parser ran before us
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BadBody(413, RpcErrorCode.InvalidRequest, `Request body exceeds ${limit} bytes.`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadBody(400, RpcErrorCode.ParseError, 'Parse error: the body is not valid JSON; send one JSON-RPC request object.');
  }
}

/** One JSON-RPC request object with a method and an id (A2A has no notifications). */
async function readRequest(req: IncomingMessage, limit: number): Promise<Json> {
  const o = obj(await readJson(req, limit));
  if (!o || o.jsonrpc !== '2.0' || typeof o.method !== 'string' || (typeof o.id !== 'string' && typeof o.id !== 'number')) {
    throw new BadBody(400, RpcErrorCode.InvalidRequest, 'Invalid Request: send one JSON-RPC 2.0 request object with a string method and an id.');
  }
  return o;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isLegacyVersionHeader(req: IncomingMessage): boolean {
  return /^0\./.test(header(req, 'a2a-version') ?? '');
}

/** Drop the tasks the caller may not see from a 1.0 ListTasks answer. */
async function onlyVisibleTasks(response: Json, visible: (taskId: string) => Promise<boolean>): Promise<void> {
  const result = obj(response.result);
  if (!result || !Array.isArray(result.tasks)) return;
  const all = result.tasks as unknown[];
  const keep = await Promise.all(
    all.map((t) => {
      const taskId = str(obj(t)?.id);
      return taskId === undefined ? false : visible(taskId);
    }),
  );
  const tasks = all.filter((_, i) => keep[i]);
  if (tasks.length !== all.length) response.result = { ...result, tasks, totalSize: tasks.length };
}

export class A2aServer {
  readonly steps: A2aSteps;
  private readonly mayJoin: (caller: Caller) => boolean;

  constructor(private readonly deps: A2aServerDeps) {
    this.steps = new A2aSteps(deps.gateway);
    this.mayJoin = deps.mayJoinWorkflow ?? ((c) => c.agent?.canSetWorkflow === true || (c.via === 'local' && !c.agent));
  }

  private get gw(): Gateway {
    return this.deps.gateway;
  }

  private security(): GatewaySecurity {
    const local = typeof this.deps.localMode === 'function' ? this.deps.localMode() : this.deps.localMode;
    return local ? 'none' : 'bearer';
  }

  /** Federated A2A agents by name (servers.d entries with transport: a2a). */
  agentManifest(name: string): ServerManifest | undefined {
    const m = this.gw.pools.get(name)?.manifest;
    return m?.transport === 'a2a' ? m : undefined;
  }

  private agentNames(): string[] {
    return [...this.gw.pools.values()].filter((p) => p.manifest.transport === 'a2a').map((p) => p.name);
  }

  private baseUrl(req: IncomingMessage): string {
    const configured = this.gw.config.publicUrl;
    return (configured ?? `http://${header(req, 'host') ?? '127.0.0.1'}`).replace(/\/+$/, '');
  }

  // ---- cards ------------------------------------------------------------------------------------------------

  async gatewayCard(req: IncomingMessage): Promise<AgentCard> {
    const agents: FederatedAgent[] = await Promise.all(
      this.agentNames().map((name) =>
        resolveAgent(this.agentManifest(name)!, this.gw.a2a.egress).then(
          (a) => ({ name, card: a.card }),
          () => ({ name }),
        ),
      ),
    );
    return gatewayCard(this.baseUrl(req), agents, this.security());
  }

  async agentCard(req: IncomingMessage, name: string): Promise<AgentCard> {
    const agent = await resolveAgent(this.agentManifest(name)!, this.gw.a2a.egress);
    return rewrittenCard(agent.card, name, this.baseUrl(req), this.security());
  }

  /** 1.0 JSON by default; the 0.3 shape when the caller asks for it with `A2A-Version: 0.3`. */
  serveCard(load: (req: IncomingMessage) => Promise<AgentCard>, name?: string): express.RequestHandler {
    return (req, res, next) => {
      if ((req.method !== 'GET' && req.method !== 'HEAD') || req.path !== '/') return next();
      if (isLegacyVersionHeader(req)) return legacyAgentCardRouter({ agentCardProvider: () => load(req), cache: { maxAge: 60 } })(req, res, next);
      load(req).then(
        (card) => {
          res.set('cache-control', 'public, max-age=60').append('vary', 'A2A-Version').json(AgentCard.toJSON(card));
        },
        (err: Error) => {
          this.gw.log.warn({ server: name, err: (err as Error & { detail?: string }).detail ?? err.message }, 'agent card not served');
          writeJson(res, { error: 'upstream_unavailable', message: `${name ? `A2A agent '${name}'` : 'The gateway card'} is unavailable right now; retry shortly.` }, {}, 502);
        },
      );
    };
  }

  // ---- JSON-RPC ---------------------------------------------------------------------------------------------

  async handle(req: IncomingMessage, res: ServerResponse, named: string | undefined): Promise<void> {
    if (named !== undefined && !this.agentManifest(named)) {
      const known = this.agentNames();
      return writeJson(res, { error: 'not_found', message: `No A2A agent named '${named}'. ${known.length > 0 ? `Agents: ${known.join(', ')}.` : 'No agent has transport: a2a in servers.d.'}` }, {}, 404);
    }
    let auth = this.deps.authenticate(req, named ? `/a2a/${named}` : '/a2a');
    if (auth instanceof Promise) auth = await auth;
    if (!auth.ok) return writeJson(res, auth.body, auth.headers, auth.status);
    const caller = auth.caller;

    let body: Json;
    try {
      body = await readRequest(req, this.gw.config.maxBodyBytes);
    } catch (err) {
      if (err instanceof BadBody) return writeJson(res, errorResponse(null, err.code, err.message), {}, err.status);
      throw err;
    }
    const id = body.id as RpcId;
    const wire = body.method as string;
    const legacy = !V1_METHODS.has(wire) && isLegacyJsonRpcMethod(wire);
    const method = legacy ? legacyJsonRpcToV1Method(wire) : wire;
    if (!V1_METHODS.has(method)) {
      return writeJson(res, errorResponse(id, RpcErrorCode.MethodNotFound, `Method not found: ${wire}. A2A methods: ${[...V1_METHODS].join(', ')} (or their 0.3 names such as message/send).`));
    }
    const ids = namedIn(obj(body.params));
    const agent = named ?? this.route(ids);
    if (!agent) {
      const isTaskCall = method !== 'SendMessage' && method !== 'SendStreamingMessage' && ids.taskId;
      return writeJson(
        res,
        isTaskCall
          ? errorResponse(id, TASK_NOT_FOUND, `Task not found: ${ids.taskId}. Ask the agent that runs it at /a2a/{name}.`)
          : errorResponse(id, RpcErrorCode.InvalidParams, `Name the agent: POST /a2a/{name}, or set message.metadata.agent to one of: ${this.agentNames().join(', ') || '(none configured)'}.`),
      );
    }

    const refusedId = a2aAllowed(caller, agent) ? await this.steps.refusedIds(caller, agent, ids) : undefined;
    if (refusedId === 'task') return writeJson(res, errorResponse(id, TASK_NOT_FOUND, `Task not found: ${ids.taskId}.`));
    if (refusedId === 'context') return writeJson(res, errorResponse(id, RpcErrorCode.InvalidParams, `contextId ${ids.contextId} cannot be continued; omit contextId to start a new conversation.`));

    const trace = header(req, 'traceparent');
    const traceparent = trace && TRACEPARENT.test(trace) ? trace : undefined;
    const wfHeader = header(req, 'x-workflow-id');
    const replyHeaders: Record<string, string> = {};
    const gone = new AbortController();
    res.once('close', () => gone.abort());

    if (!STEP_METHODS.has(method)) {
      const refusal = this.steps.checkRead(caller, agent, method);
      if (refusal) return this.refuse(res, id, refusal);
      const workflowId = method === 'SubscribeToTask' ? await this.steps.workflowOf(caller, agent, ids) : undefined;
      if (workflowId) replyHeaders['x-workflow-id'] = workflowId;
      await this.forward({ agent, method, legacy, body, id, traceparent, replyHeaders, signal: gone.signal, visible: this.steps.visibleTo(caller, agent) }, req, res);
      return;
    }

    const choice = chooseWorkflow(caller, wfHeader, this.mayJoin);
    if (!choice.ok) return this.refuse(res, id, { reason: 'delegation_denied', message: choice.message }, choice.workflowId);
    let step;
    try {
      step = await this.steps.place({ caller, agent, method, text: ids.text, taskId: ids.taskId, contextId: ids.contextId, joinWorkflow: choice.workflowId, traceparent });
    } catch (err) {
      return writeJson(res, errorResponse(id, RpcErrorCode.InvalidParams, (err as Error).message, { reason: 'invalid_request' }));
    }
    replyHeaders['x-workflow-id'] = step.workflowId;
    const onTask = (seen: TaskObservation) => this.steps.observe(step, seen).catch((err: Error) => this.gw.log.error({ server: agent, err: err.message }, 'A2A task owner could not be recorded'));
    const result = await this.steps.run(step, () => this.forward({ agent, method, legacy, body, id, traceparent, replyHeaders, signal: gone.signal, onTask }, req, res), gone.signal);
    if (result.kind === 'refused') return this.refuse(res, id, result.refusal, step.workflowId, replyHeaders);
  }

  private refuse(res: ServerResponse, id: RpcId, refusal: Refusal, workflowId?: string, headers: Record<string, string> = {}): void {
    const answer = a2aRefusals.render(refusal, { id, workflowId });
    writeJson(res, answer.body, headers, answer.status);
  }

  /** The agent a request to the gateway's own /a2a endpoint is for. */
  private route(n: ReturnType<typeof namedIn>): string | undefined {
    if (n.agent && this.agentManifest(n.agent)) return n.agent;
    const known = this.steps.agentOf(n);
    if (known && this.agentManifest(known)) return known;
    const all = this.agentNames();
    return all.length === 1 ? all[0] : undefined;
  }

  private async forward(
    call: {
      agent: string;
      method: string;
      legacy: boolean;
      body: Json;
      id: RpcId;
      traceparent?: string;
      replyHeaders: Record<string, string>;
      signal: AbortSignal;
      /** Hears the task as soon as it is known; a unary answer is written once it has settled. */
      onTask?: (seen: TaskObservation) => Promise<void>;
      /** ListTasks shows only the tasks this predicate keeps. */
      visible?: (taskId: string) => Promise<boolean>;
    },
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<RelayOutcome> {
    const manifest = this.agentManifest(call.agent)!;
    // An agent its pool knows to be down is refused at once, as its MCP tools are, until a background recheck finds it back.
    const down = this.gw.pools.get(call.agent)?.downReason();
    if (down) {
      writeJson(res, unavailable(call.id, down), call.replyHeaders);
      return { ok: false, reason: 'upstream_unavailable', seen: {} };
    }
    let agent: ResolvedAgent;
    try {
      agent = await resolveAgent(manifest, this.gw.a2a.egress);
    } catch (err) {
      this.gw.log.warn({ server: call.agent, err: (err as Error & { detail?: string }).detail ?? (err as Error).message }, 'A2A agent card unavailable');
      writeJson(res, upstreamFailure(call.id, call.agent, (err as Error).message), call.replyHeaders);
      return { ok: false, reason: 'upstream_unavailable', seen: {} };
    }
    const trace: Record<string, string> = call.traceparent ? { traceparent: call.traceparent } : {};
    const extensions = header(req, 'a2a-extensions');
    if (extensions) trace['A2A-Extensions'] = extensions;
    const rawRelay = !call.legacy && agent.jsonRpc && agent.jsonRpc.protocolVersion.startsWith('1.');
    if (!rawRelay) {
      // 0.3 callers, and agents without a 1.0 JSON-RPC endpoint: the SDK translates both ways.
      return relayThroughSdk({ manifest, egress: this.gw.a2a.egress, card: agent.card, body: call.body, headers: trace, replyHeaders: call.replyHeaders, signal: call.signal, protocol: call.legacy ? '0.3' : '1.0', onTask: call.onTask, visible: call.visible }, res);
    }
    const verdict = await this.gw.a2a.egress.check(new URL(agent.jsonRpc!.url), manifest);
    if (!verdict.ok) {
      this.gw.log.warn({ server: call.agent, url: agent.jsonRpc!.url, why: verdict.why }, verdict.message);
      writeJson(res, errorResponse(call.id, REFUSAL_CODE, verdict.message, { reason: 'egress_refused', server: call.agent }), call.replyHeaders);
      return { ok: false, reason: 'egress_refused', seen: {} };
    }
    const target = {
      url: agent.jsonRpc!.url,
      headers: { ...(verdict.credentials ? manifest.headers : {}), ...trace, 'A2A-Version': agent.jsonRpc!.protocolVersion },
      timeoutMs: manifest.timeoutMs,
      server: call.agent,
      lookup: this.gw.a2a.egress.lookupFor(new URL(agent.jsonRpc!.url), manifest),
    };
    const text = JSON.stringify(call.body);
    if (STREAMING.has(call.method)) return relayStream(target, call.id, text, res, call.replyHeaders, call.onTask);
    const { response, outcome } = await relayUnary(target, call.id, text, call.signal);
    if (call.method === 'ListTasks' && call.visible) await onlyVisibleTasks(response, call.visible);
    if (call.onTask && outcome.seen.taskId) await call.onTask(outcome.seen);
    writeJson(res, response, call.replyHeaders);
    return outcome;
  }
}

/**
 * Mount the A2A routes on the gateway's express app (before its 404 handler). Returns the server, whose `steps`
 * tests and the admin console may inspect.
 */
export function mountA2a(app: express.Express, deps: A2aServerDeps): A2aServer {
  const server = new A2aServer(deps);
  const fail = (res: express.Response, err: unknown) => {
    deps.gateway.log.error({ err: (err as Error).stack }, 'A2A request failed');
    writeJson(res, errorResponse(null, RpcErrorCode.InternalError, 'Internal error; the gateway log has the details.'), {}, 500);
  };
  app.use(CARD_PATH, server.serveCard((req) => server.gatewayCard(req)));
  app.use(`/a2a/:name${CARD_PATH}`, (req, res, next) => {
    const name = String(req.params.name);
    if (!server.agentManifest(name)) return writeJson(res, { error: 'not_found', message: `No A2A agent named '${name}'.` }, {}, 404);
    return server.serveCard((r) => server.agentCard(r, name), name)(req, res, next);
  });
  app.post('/a2a', (req, res) => void server.handle(req, res, undefined).catch((err: unknown) => fail(res, err)));
  app.post('/a2a/:name', (req, res) => void server.handle(req, res, String(req.params.name)).catch((err: unknown) => fail(res, err)));
  app.all(['/a2a', '/a2a/:name'], (_req, res) => {
    res.set('allow', 'POST');
    writeJson(res, errorResponse(null, RpcErrorCode.InvalidRequest, 'A2A endpoints take JSON-RPC over POST; the card is at ./.well-known/agent-card.json.'), { allow: 'POST' }, 405);
  });
  return server;
}

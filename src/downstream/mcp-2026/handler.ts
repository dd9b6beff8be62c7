/**
 * MCP 2026-07-28 on /mcp and /servers/{name}/mcp: each POST stands alone. It is authenticated (before it gets
 * here), validated by the revision's ladder, joined to a workflow, and then served by the same dispatch and Step
 * path as a legacy session, on a per-request session whose upstream sessions come from the caller's lane.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ClientSession, type View } from '../../gateway/client-session.js';
import { dispatch } from '../../gateway/dispatch.js';
import { FEDERATED_CAPABILITIES, GATEWAY_VERSION, type Gateway } from '../../gateway/gateway.js';
import type { Caller } from '../../gateway/types.js';
import { UpstreamError, unavailable } from '../../upstream/errors.js';
import { errorResponse, isRequest, RpcErrorCode, type RpcMessage, type RpcRequest, type RpcResponse } from '../../util/jsonrpc.js';
import { refusalResponse } from '../render/mcp.js';
import { clip } from '../../util/shown.js';
import { PostReply, prefersJson } from '../sse.js';
import { isRejection, MODERN_REVISION, validateModern, withoutEnvelope, type ModernMeta } from './envelope.js';
import { Lanes, workflowOf } from './lanes.js';
import { decorate, ModernReply, type ModernReplyOptions } from './reply.js';
import { InputBridge, STATE_PREFIX } from './bridge.js';
import type { StateKeys } from './state-keys.js';
import type { ReplicaForwarder } from '../session-forward.js';
import { ListenHub, readFilter } from './listen.js';
import { changedKind } from '../../gateway/notify.js';
import { setStateQuietly } from '../../stores/workflows.js';

/** Methods a 2026-07-28 client may call here; anything else (initialize, ping, logging/setLevel, resources/subscribe, …) is not found. */
const SERVED = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'completion/complete',
  'subscriptions/listen',
]);

/** Requests a held upstream request can be resumed for (the Step path's kinds). */
const RETRYABLE = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** The legacy handshake version a per-request session speaks to today's upstreams. */
const UPSTREAM_REVISION = '2025-11-25';

/** Capabilities offered to a 2026-07-28 client: no resource subscriptions (the revision removed resources/subscribe). */
function modernCapabilities(capabilities: Record<string, unknown>): Record<string, unknown> {
  const { logging: _logging, ...rest } = capabilities;
  const resources = rest.resources as Record<string, unknown> | undefined;
  if (resources && 'subscribe' in resources) {
    const { subscribe: _subscribe, ...others } = resources;
    rest.resources = others;
  }
  return rest;
}

/**
 * The session one stateless request is served on. Upstream sessions of its lane may outlive it and keep it as
 * their event sink: what they push goes to the lane's requests in flight, never to a stream of its own.
 */
class LaneSession extends ClientSession {
  constructor(private readonly sink: (msg: RpcMessage) => void, ...args: ConstructorParameters<typeof ClientSession>) {
    super(...args);
  }

  override push(msg: RpcMessage): void {
    this.sink(msg);
  }
}

const changedKindOf = (msg: RpcMessage) => ('method' in msg ? changedKind(msg.method) : undefined);

export interface ModernOptions {
  mayJoinWorkflow?: (caller: Caller) => boolean;
  /** The keys requestState is sealed with (replicas: derived from the shared signing keys). */
  stateKeys?: StateKeys;
  /** The other replicas: a retry for a call held on one of them is forwarded there. */
  replicas?: ReplicaForwarder;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export class ModernMcp {
  readonly lanes: Lanes;
  readonly listens: ListenHub;
  readonly bridge: InputBridge;

  constructor(private readonly gw: Gateway, private readonly opts: ModernOptions = {}) {
    this.bridge = new InputBridge(undefined, { keys: opts.stateKeys, replica: opts.replicas?.replicaId });
    this.lanes = new Lanes(gw);
    this.listens = new ListenHub(gw);
    gw.listChanges.add((servers, kind) => this.listens.serversChanged(servers, kind));
  }

  /** `body`: the request as posted, for forwarding a retry to the replica holding its call. */
  async serve(req: IncomingMessage, res: ServerResponse, msg: RpcMessage, view: View, caller: Caller, body?: Buffer): Promise<void> {
    if (!('method' in msg)) {
      // No server-to-client requests exist in this revision, so a posted response answers nothing.
      return sendJson(res, 400, errorResponse(null, RpcErrorCode.InvalidRequest, `A ${MODERN_REVISION} client has no requests to answer: post requests only.`));
    }
    const id = isRequest(msg) ? msg.id : null;
    const meta = validateModern(req.headers, id, msg.method, msg.params);
    if (isRejection(meta)) return sendJson(res, meta.status, meta.body);
    if (!isRequest(msg)) {
      res.writeHead(202).end();
      return;
    }
    if (!SERVED.has(msg.method)) {
      return sendJson(res, 404, errorResponse(msg.id, RpcErrorCode.MethodNotFound, `Method not found: ${clip(msg.method)} (not served to ${MODERN_REVISION} clients).`));
    }

    if (msg.method === 'subscriptions/listen') return this.listen(res, msg, view, caller, meta);
    const state = msg.params?.requestState;
    const target = msg.method === 'resources/read' ? msg.params?.uri : msg.params?.name;
    if (typeof state === 'string' && state.startsWith(STATE_PREFIX) && RETRYABLE.has(msg.method)) return this.resume(req, res, msg, state, view, caller, body);
    let params = msg.params;
    if (state !== undefined && RETRYABLE.has(msg.method)) {
      // Only state this gateway minted is taken; the upstream gets its own state back, byte for byte.
      const inner = this.bridge.unwrap(state, caller, view, msg.method, target, msg.id);
      if (!inner.ok) return sendJson(res, inner.status, inner.body);
      params = { ...msg.params, requestState: inner.state };
    }

    const wf = workflowOf(caller, header(req, 'x-workflow-id'), header(req, 'traceparent'), this.opts.mayJoinWorkflow);
    if (!wf.ok) return sendJson(res, 403, refusalResponse(msg.id, { reason: 'delegation_denied', message: wf.message }, wf.workflowId));
    const joined = caller.workflowId ?? wf.workflowId;
    let workflowId: string;
    try {
      workflowId = this.gw.workflows.begin({ caller, kind: 'mcp', id: joined, traceparent: wf.traceparent });
    } catch (err) {
      return sendJson(res, 400, errorResponse(msg.id, RpcErrorCode.InvalidRequest, `Cannot join the workflow: ${clip((err as Error).message, 300)}.`));
    }

    let reply: ModernReply | undefined;
    const lane = this.lanes.enter(caller, view, meta, (m) => {
      // A log message outside any call goes to the lane's requests in flight.
      if ('method' in m && m.method === 'notifications/message') reply?.related(m);
    });
    const cs = new LaneSession(
      this.laneSink(caller, view, lane.broadcast),
      { protocolVersion: UPSTREAM_REVISION, capabilities: meta.clientCapabilities, clientInfo: meta.clientInfo },
      caller,
      workflowId,
      view,
      wf.traceparent,
      lane.id,
    );
    cs.initialized = true;
    cs.rootOfWorkflow = joined === undefined;
    const serverInfo = { name: 'switchyard', version: GATEWAY_VERSION };
    const abort = (why: string) => {
      for (const c of cs.inFlight.values()) c.abort(why);
    };
    const opts: ModernReplyOptions = {
      method: msg.method,
      workflowId,
      serverInfo,
      logLevel: meta.logLevel,
      session: cs,
      requestId: msg.id,
      rejectWith: (status, body) => sendJson(res, status, body),
      hold: RETRYABLE.has(msg.method) ? (upstream, r) => this.bridge.hold(r, cs, upstream, caller, view, msg.method, target) : undefined,
      wrapState: RETRYABLE.has(msg.method) ? (inner) => this.bridge.wrap(inner, caller, view, msg.method, target) : undefined,
      abort,
    };
    const post = new PostReply(res, {}, prefersJson(req.headers.accept));
    const current = (reply = new ModernReply(post, opts));
    res.once('close', () => {
      // A client that goes away before its answer cancels the call: the revision has no other way to say so.
      if (!current.answered) abort('client closed the request stream');
    });
    try {
      const request: RpcRequest = { ...msg, params: withoutEnvelope(params) };
      if (msg.method === 'server/discover') await this.discover(request, cs, meta, post, opts);
      else await dispatch(this.gw, cs, request, reply);
    } finally {
      this.bridge.forget(current);
      lane.done();
      cs.close();
      if (cs.rootOfWorkflow && this.gw.workflows.state(workflowId) === 'active') {
        setStateQuietly(this.gw.workflows, workflowId, 'done', 'request answered', (err) =>
          this.gw.log.warn({ workflowId, err: err.message }, 'could not mark workflow done'),
        );
      }
    }
  }

  /** A retry with gateway-minted requestState: the held call takes the client's input and answers on this stream. */
  private resume(req: IncomingMessage, res: ServerResponse, msg: RpcRequest, state: string, view: View, caller: Caller, body?: Buffer): void | Promise<void> {
    const post = new PostReply(res, {}, prefersJson(req.headers.accept));
    const send = (status: number, body: RpcResponse) => sendJson(res, status, body);
    const done = this.bridge.resume(state, msg.params ?? {}, caller, view, msg.method, msg.id, {
      send,
      inner: post,
      asked: (result) => post.final({ jsonrpc: '2.0', id: msg.id, result }),
    });
    if (!done.ok) {
      const forwarder = this.opts.replicas;
      if (done.owner === undefined || !forwarder?.mayForward(req)) return send(done.status, done.body);
      return forwarder.toReplica(req, res, done.owner, body ?? Buffer.from(JSON.stringify(msg)), () => send(done.status, done.body));
    }
    const resumed = done.resumed;
    if (resumed) {
      res.once('close', () => {
        // The retry's client went away before the call answered it: the call is cancelled, as for any request.
        if (!resumed.reply.answered) for (const c of resumed.session.inFlight.values()) c.abort('client closed the request stream');
      });
    }
  }

  /** Where the lane's upstream sessions push: list changes to the caller's listen streams, the rest to its requests. */
  private laneSink(caller: Caller, view: View, broadcast: (msg: RpcMessage) => void): (msg: RpcMessage) => void {
    return (msg) => {
      const kind = changedKindOf(msg);
      if (kind) this.listens.callerChanged(caller.principal, view, kind);
      else broadcast(msg);
    };
  }

  /**
   * subscriptions/listen: the stream stays open on the caller's lane, whose upstream sessions are opened and listed
   * for the opted-in kinds, so their list changes are heard while the stream lives.
   */
  private async listen(res: ServerResponse, msg: RpcRequest, view: View, caller: Caller, meta: ModernMeta): Promise<void> {
    const kinds = readFilter(msg.id, msg.params);
    if (!(kinds instanceof Set)) return sendJson(res, 400, kinds);
    const lane = this.lanes.enter(caller, view, meta, () => {});
    const cs = new LaneSession(
      this.laneSink(caller, view, lane.broadcast),
      { protocolVersion: UPSTREAM_REVISION, capabilities: meta.clientCapabilities, clientInfo: meta.clientInfo },
      caller,
      'listen',
      view,
      undefined,
      lane.id,
    );
    this.listens.open(res, msg.id, caller, view, kinds, () => {
      lane.done();
      cs.close();
    });
    await Promise.all(
      this.gw.serversInView(cs).map(async (server) => {
        try {
          const up = await this.gw.upstreamFor(cs, server);
          if (kinds.has('tools')) await this.gw.index.toolsOf(up);
          if (kinds.has('prompts')) await this.gw.index.promptsOf(up);
          if (kinds.has('resources')) await this.gw.index.resourcesOf(up);
        } catch (err) {
          // A server that cannot be reached now is announced when it comes back (pool health).
          this.gw.log.debug({ server, err: (err as Error).message }, 'subscriptions/listen: upstream not listed');
        }
      }),
    );
  }

  /** server/discover: what the gateway offers on /mcp, or that one server's own view on /servers/{name}/mcp. */
  private async discover(req: RpcRequest, cs: ClientSession, _meta: ModernMeta, post: PostReply, opts: Parameters<typeof decorate>[1]): Promise<void> {
    let capabilities: Record<string, unknown> = FEDERATED_CAPABILITIES;
    let serverInfo: Record<string, unknown> = opts.serverInfo;
    let instructions: string | undefined;
    if (cs.view.single) {
      try {
        const up = await this.gw.upstreamFor(cs, cs.view.single);
        capabilities = up.serverCapabilities;
        serverInfo = up.serverInfo;
        instructions = up.instructions;
      } catch (err) {
        const answer: RpcResponse = err instanceof UpstreamError ? unavailable(req.id, err) : errorResponse(req.id, RpcErrorCode.InternalError, `Cannot reach the server: ${clip((err as Error).message, 300)}.`);
        return post.final(decorate(answer, opts));
      }
    }
    const result = { supportedVersions: [MODERN_REVISION], capabilities: modernCapabilities(capabilities), ...(instructions ? { instructions } : {}) };
    post.final(decorate({ jsonrpc: '2.0', id: req.id, result }, { ...opts, serverInfo }));
  }

  close(): Promise<void> {
    this.bridge.close();
    return this.lanes.close();
  }
}

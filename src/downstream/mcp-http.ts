/**
 * Streamable HTTP for MCP clients (/mcp and /servers/{name}/mcp): sessions, POST answered as JSON or SSE,
 * the GET stream, DELETE, and every bad input answered with a clear error and the right status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from '../gateway/types.js';
import type { Gateway } from '../gateway/gateway.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../gateway/gateway.js';
import { SessionRefusedError } from '../gateway/admission.js';
import type { ClientSession, View } from '../gateway/client-session.js';
import { dispatch } from '../gateway/dispatch.js';
import { chooseWorkflow } from '../identity/workflow-choice.js';
import { unavailable, UpstreamError } from '../upstream/errors.js';
import { clip } from '../util/shown.js';
import { checkEnvelope, errorResponse, isRequest, RpcErrorCode, type RpcMessage } from '../util/jsonrpc.js';
import { refusalResponse } from './render/mcp.js';
import { GetStream, PostReply, prefersJson } from './sse.js';
import { claimsModern } from './mcp-2026/envelope.js';
import { ModernMcp } from './mcp-2026/handler.js';
import { MemoryStreamEvents } from '../stores/memory/stream-events.js';
import type { StreamEventStore } from '../stores/stream-events.js';
import { notFound, type RemoteSessions } from './session-forward.js';
import type { StateKeys } from './mcp-2026/state-keys.js';

export type AuthResult =
  | { ok: true; caller: Caller }
  | { ok: false; status: number; headers?: Record<string, string>; body: Record<string, unknown> };

export interface McpHttpOptions {
  maxBodyBytes: number;
  authenticate: (req: IncomingMessage, resourcePath: string) => AuthResult | Promise<AuthResult>;
  /** Whether the caller may name the workflow it joins (X-Workflow-Id). */
  mayJoinWorkflow?: (caller: Caller) => boolean;
  /** Where GET-stream events are kept for replay; default in memory. */
  streamEvents?: StreamEventStore;
  /** Sessions shared with other replicas (state.redis): held ones are recorded, others' are forwarded to them. */
  remote?: RemoteSessions;
  /** The keys 2026-07-28 requestState is sealed with; default a key of this process. */
  stateKeys?: StateKeys;
}

/** sessionOf's answer for a session another replica may hold. */
const ELSEWHERE = Symbol('elsewhere');

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function rpcError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, errorResponse(null, code, message));
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      reject(new BodyTooLarge());
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        // Stop collecting but let the answer go out: destroying the request would reset the socket before the 413.
        chunks.length = 0;
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export class McpHttpHandler {
  private readonly getStreams = new WeakMap<ClientSession, GetStream>();
  private readonly streamEvents: StreamEventStore;
  /** Requests that speak 2026-07-28 (stateless, per request). */
  readonly modern: ModernMcp;

  constructor(private readonly gw: Gateway, private readonly opts: McpHttpOptions) {
    this.streamEvents = opts.streamEvents ?? new MemoryStreamEvents();
    this.modern = new ModernMcp(gw, { mayJoinWorkflow: opts.mayJoinWorkflow, stateKeys: opts.stateKeys, replicas: opts.remote });
  }

  async handle(req: IncomingMessage, res: ServerResponse, view: View, resourcePath: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      res.writeHead(405, { allow: 'GET, POST, DELETE', 'content-type': 'application/json' });
      res.end(JSON.stringify(errorResponse(null, RpcErrorCode.InvalidRequest, `Method ${method} not allowed; use POST, GET or DELETE.`)));
      return;
    }
    let auth = this.opts.authenticate(req, resourcePath);
    if (auth instanceof Promise) auth = await auth;
    if (!auth.ok) return sendJson(res, auth.status, auth.body, auth.headers);
    // Existence is checked only after authentication, so names are not revealed to anyone who may not connect.
    if (view.single !== undefined && !this.gw.pools.has(view.single)) {
      req.resume();
      return sendJson(res, 404, { error: 'not_found', message: 'No MCP endpoint at this path. MCP clients connect to /mcp.' });
    }
    if (method === 'POST') return this.post(req, res, view, auth.caller);
    const cs = this.sessionOf(req, res, auth.caller);
    if (cs === ELSEWHERE) return this.opts.remote!.forward(req, res, auth.caller, req.headers['mcp-session-id'] as string);
    if (!cs) return;
    if (method === 'GET') return this.get(req, res, cs);
    await this.gw.closeSession(cs, 'DELETE from client');
    this.getStreams.get(cs)?.end();
    res.writeHead(200).end();
  }

  /** The session named by Mcp-Session-Id, ELSEWHERE when another replica may hold it, or an error already sent. */
  private sessionOf(req: IncomingMessage, res: ServerResponse, caller: Caller): ClientSession | typeof ELSEWHERE | undefined {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || !id) {
      rpcError(res, 400, RpcErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required (send initialize first to get one).');
      return undefined;
    }
    const cs = this.gw.sessions.get(id);
    if (!cs && this.opts.remote?.mayForward(req)) return ELSEWHERE;
    // A session belongs to the exact credential that opened it; any other is told it does not exist (as for an unknown id).
    if (!cs || cs.caller.principal !== caller.principal) {
      notFound(res);
      return undefined;
    }
    const pv = req.headers['mcp-protocol-version'];
    if (typeof pv === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(pv)) {
      rpcError(res, 400, RpcErrorCode.InvalidRequest, `Unsupported MCP-Protocol-Version ${clip(pv)}; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}.`);
      return undefined;
    }
    return cs;
  }

  private async post(req: IncomingMessage, res: ServerResponse, view: View, caller: Caller): Promise<void> {
    const type = req.headers['content-type'] ?? '';
    if (!type.includes('application/json')) {
      req.resume();
      return rpcError(res, 415, RpcErrorCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json.');
    }
    const accept = req.headers.accept ?? '';
    if (!accept.includes('*/*') && !(accept.includes('application/json') && accept.includes('text/event-stream'))) {
      req.resume();
      return rpcError(res, 406, RpcErrorCode.InvalidRequest, 'Not Acceptable: Accept must list both application/json and text/event-stream.');
    }
    let body: Buffer;
    try {
      body = await readBody(req, this.opts.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        // Close the connection after answering so the rest of an oversized body is not read.
        return sendJson(res, 413, errorResponse(null, RpcErrorCode.InvalidRequest, `Payload Too Large: the body exceeds ${this.opts.maxBodyBytes} bytes (gateway.yaml maxBodyBytes).`), { connection: 'close' });
      }
      return rpcError(res, 400, RpcErrorCode.ParseError, 'Could not read the request body.');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return rpcError(res, 400, RpcErrorCode.ParseError, `Parse error: ${(err as Error).message}`);
    }
    if (Array.isArray(parsed)) return rpcError(res, 400, RpcErrorCode.InvalidRequest, 'JSON-RPC batches are not supported; send one message per POST.');
    const msg = checkEnvelope(parsed);
    if (typeof msg === 'string') return rpcError(res, 400, RpcErrorCode.InvalidRequest, `Invalid Request: ${msg}.`);
    // The revision is chosen per request: a 2026-07-28 request carries its version in _meta and has no session.
    if (claimsModern(req.headers, msg, SUPPORTED_PROTOCOL_VERSIONS)) return this.modern.serve(req, res, msg, view, caller, body);

    if (isRequest(msg) && msg.method === 'initialize') return this.initialize(req, res, msg, view, caller);
    const cs = this.sessionOf(req, res, caller);
    if (cs === ELSEWHERE) return this.opts.remote!.forward(req, res, caller, req.headers['mcp-session-id'] as string, body);
    if (!cs) return;
    if (!isRequest(msg)) {
      await dispatch(this.gw, cs, msg, undefined);
      res.writeHead(202).end();
      return;
    }
    await dispatch(this.gw, cs, msg, new PostReply(res, { 'mcp-session-id': cs.id, 'x-workflow-id': cs.workflowId }, prefersJson(accept)));
  }

  private async initialize(req: IncomingMessage, res: ServerResponse, msg: RpcMessage & { id: string | number; params?: Record<string, unknown> }, view: View, caller: Caller): Promise<void> {
    const wfHeader = req.headers['x-workflow-id'];
    const choice = chooseWorkflow(caller, typeof wfHeader === 'string' ? wfHeader : undefined, this.opts.mayJoinWorkflow);
    if (!choice.ok) {
      return sendJson(res, 403, refusalResponse(msg.id, { reason: 'delegation_denied', message: choice.message }, choice.workflowId));
    }
    const workflowId = choice.workflowId;
    const tp = req.headers.traceparent;
    try {
      const { session, result } = await this.gw.initialize(msg.params ?? {}, caller, view, {
        workflowId,
        traceparent: typeof tp === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(tp) ? tp : undefined,
      });
      // Recorded before the answer goes out: the client's next request may reach another replica at once.
      if (this.opts.remote && !(await this.opts.remote.claim(session))) {
        await this.gw.closeSession(session, 'session directory unreachable');
        return sendJson(res, 503, errorResponse(msg.id, -32000, 'Service Unavailable: the session directory (Redis) is unreachable, so a session made now could not continue on the other replicas. Retry shortly.'));
      }
      // The workflow id travels back so an agent framework can hand it to its model calls (X-Workflow-Id).
      const withWorkflow = { ...result, _meta: { ...(result._meta as object | undefined), 'io.switchyard/workflowId': session.workflowId } };
      sendJson(res, 200, { jsonrpc: '2.0', id: msg.id, result: withWorkflow }, { 'mcp-session-id': session.id, 'x-workflow-id': session.workflowId });
    } catch (err) {
      if (err instanceof SessionRefusedError) {
        sendJson(res, err.refusal.reason === 'rate_limited' ? 429 : 403, refusalResponse(msg.id, err.refusal));
        return;
      }
      // An upstream that cannot start is told as such; anything else (a bad X-Workflow-Id) says what was wrong.
      const answer = err instanceof UpstreamError ? unavailable(msg.id, err) : errorResponse(msg.id, RpcErrorCode.InvalidRequest, `Cannot start the session: ${clip((err as Error).message, 300)}.`);
      sendJson(res, 200, answer);
    }
  }

  private get(req: IncomingMessage, res: ServerResponse, cs: ClientSession): void {
    const accept = req.headers.accept ?? '';
    if (!accept.includes('text/event-stream') && !accept.includes('*/*')) {
      return rpcError(res, 406, RpcErrorCode.InvalidRequest, 'Not Acceptable: the GET stream needs Accept: text/event-stream.');
    }
    let stream = this.getStreams.get(cs);
    if (!stream) {
      const created = new GetStream(cs.id.slice(0, 8), this.streamEvents, cs.id);
      this.getStreams.set(cs, created);
      cs.onClose(() => created.end());
      stream = created;
    }
    const last = req.headers['last-event-id'];
    if (!stream.attach(res, { 'mcp-session-id': cs.id }, typeof last === 'string' ? last : undefined)) {
      return rpcError(res, 409, RpcErrorCode.InvalidRequest, 'Conflict: this session already has an open GET stream.');
    }
    cs.attachStream(stream);
    res.once('close', () => {
      if (!stream.open) cs.attachStream(undefined);
    });
  }
}

/**
 * One initialized MCP session with one upstream: request/response correlation, progress-token namespacing,
 * per-call timeouts reset by progress, cancellation, and routing of server-to-client requests to the call
 * that caused them. Failures come back as JSON-RPC error values, never as empty successes.
 */
import type { Logger } from 'pino';
import { handshake, type Speaks } from './handshake.js';
import { driveInputRequired, LISTEN_RETRY_MS, listenFilter, modernHeaders, withModernEnvelope } from './modern.js';
import type { ServerManifest } from '../config/types.js';
import {
  errorResponse,
  isNotification,
  isRequest,
  isResponse,
  REQUEST_CANCELLED,
  resultResponse,
  type Params,
  type RpcId,
  type RpcMessage,
  type RpcNotification,
  type RpcRequest,
  type RpcResponse,
} from '../util/jsonrpc.js';
import type { Step } from '../gateway/types.js';
import { maskUrls } from '../util/shown.js';
import { asUpstreamError, relayedError, unavailable, UpstreamError } from './errors.js';
import { SessionExpiredError, type SendOptions, type UpstreamTransport } from './transport.js';
import { LazySignalOptions } from './lazy-signal.js';

export { unavailable };

export interface ClientInit {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo: { name: string; version: string; [k: string]: unknown };
}

export interface CallHooks {
  /** Notifications tied to this call: progress (client's token restored) and logging on its stream. */
  onNotification?: (msg: RpcNotification) => void;
  /** Server-to-client requests raised while this call runs; resolve with the client's answer (any id). */
  onServerRequest?: (msg: RpcRequest) => Promise<RpcResponse>;
  signal?: AbortSignal;
  /** Like `signal`, for callers that make no AbortSignal unless one is needed (see gateway/cancel.ts); wins over it. */
  cancel?: Cancellable;
  timeoutMs?: number;
  /** Extra HTTP headers for this request (trace context, minted identity). */
  headers?: Record<string, string>;
  /** Who made the call (downstream session id): a request that cannot be tied to one call goes only to a sole owner. */
  owner?: string;
  /** The gateway step this call serves, for transports that tie upstream work to it (A2A tasks). */
  step?: Step;
  /** Set by the session: the response's size on the wire in bytes, when the transport knows it. */
  responseBytes?: number;
}

/** A call's cancellation as the session listens to it. */
export interface Cancellable {
  readonly aborted: boolean;
  readonly reason: unknown;
  readonly signal: AbortSignal;
  /** Run `listener` once on abort; returns the function that removes it. */
  onAbort(listener: () => void): () => void;
}

export interface SessionEvents {
  onNotification?: (msg: RpcNotification) => void;
  onServerRequest?: (msg: RpcRequest) => Promise<RpcResponse>;
  /** The session ended: `cause` says why, absent when the gateway closed it. */
  onClose?: (cause?: UpstreamError) => void;
}

interface Pending {
  id: number;
  method: string;
  resolve: (r: RpcResponse) => void;
  /** Takes a failure as data instead of a rendered error (the handshake, which rethrows it). */
  fail?: (e: UpstreamError) => void;
  hooks: CallHooks;
  timer?: NodeJS.Timeout;
  timeoutMs: number;
  clientToken?: string | number;
  upstreamToken?: string;
  onAbort?: () => void;
  offAbort?: () => void;
}

let tokenSeq = 0;

export class UpstreamSession {
  state: 'new' | 'ready' | 'closed' = 'new';
  serverCapabilities: Record<string, unknown> = {};
  serverInfo: Record<string, unknown> = {};
  instructions?: string;
  protocolVersion?: string;
  /** Bits of the list kinds answered on this session: a list_changed before any is not news to anyone. */
  listed = 0;
  /** The level the gateway last set with logging/setLevel, if it set one. */
  logLevel?: string;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly byToken = new Map<string, Pending>();
  private reinit?: Promise<void>;
  /** The revision this session speaks, once chosen (the envelope goes on every request while it is modern). */
  private speaks?: Speaks;
  /** The id of this session's open subscriptions/listen (2026-07-28), which is not a call in flight. */
  private listenId?: number;
  private listenRetryMs = LISTEN_RETRY_MS;
  /** Gateway-unique prefix so two clients' equal progress tokens never collide upstream. */
  private readonly tokenPrefix = `sy${(++tokenSeq).toString(36)}-`;

  constructor(
    readonly manifest: ServerManifest,
    readonly transport: UpstreamTransport,
    private readonly init: ClientInit,
    private readonly events: SessionEvents,
    private readonly log: Logger,
  ) {
    transport.onmessage = (m, related, bytes) => this.onMessage(m, related, bytes);
    transport.onclose = (cause) => this.onTransportClose(cause);
    transport.onerror = (err) => this.log.warn({ err: maskUrls(err.message) }, 'upstream transport error');
  }

  get name(): string {
    return this.manifest.name;
  }

  get inFlight(): number {
    return this.pending.size - (this.listenId !== undefined && this.pending.has(this.listenId) ? 1 : 0);
  }

  private get connectTimeoutMs(): number {
    return this.manifest.connectTimeoutMs ?? 30_000;
  }

  /** Start the transport and initialize, both within connectTimeoutMs (calls have their own timeoutMs). */
  async connect(): Promise<void> {
    const limit = this.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamError(this.name, 'timeout', `it did not start and initialize within ${limit} ms`, { method: 'initialize', timeoutMs: limit, field: '`connectTimeoutMs`' })), limit);
    });
    try {
      await Promise.race([this.transport.start().then(() => this.handshake()), late]);
    } finally {
      clearTimeout(timer);
    }
    this.state = 'ready';
    // A 2026-07-28 upstream has no GET stream: subscriptions/listen replaces it.
    if (!this.modern) this.transport.openServerStream?.();
    else this.listen();
  }

  /**
   * A 2026-07-28 upstream's list changes arrive on a subscriptions/listen stream held open while the session lives
   * (they reach the session's events as a GET stream's would); the acknowledgement and anything else on it stay here.
   */
  private listen(): void {
    const notifications = listenFilter(this.serverCapabilities);
    if (this.state !== 'ready' || !notifications) return;
    const opened = Date.now();
    this.start('subscriptions/listen', { notifications }, { timeoutMs: 0, onNotification: () => {} }, (res) => {
      this.listenId = undefined;
      if (this.state !== 'ready' || res.error?.code === -32601) return;
      // A stream that lasted resets the delay; one that keeps ending fast is opened again ever more slowly.
      this.listenRetryMs = Date.now() - opened > 10_000 ? LISTEN_RETRY_MS : Math.min(this.listenRetryMs * 2, 30_000);
      setTimeout(() => this.listen(), this.listenRetryMs).unref();
    });
    this.listenId = this.seq; // the id start() just took
  }

  /** Whether this upstream speaks 2026-07-28: no initialize, the envelope on every request. */
  private get modern(): boolean {
    return this.speaks === 'modern';
  }

  private async handshake(): Promise<void> {
    const h = await handshake({
      manifest: this.manifest,
      transport: this.transport,
      init: this.init,
      log: this.log,
      connectTimeoutMs: this.connectTimeoutMs,
      speak: (revision) => (this.speaks = revision),
      ask: (method, params, timeoutMs) => new Promise<RpcResponse>((resolve, reject) => this.start(method, params, { timeoutMs }, resolve, reject)),
    });
    this.protocolVersion = h.protocolVersion;
    this.serverCapabilities = h.capabilities;
    this.serverInfo = h.serverInfo;
    this.instructions = h.instructions;
  }

  /** Send a request; always resolves with a response (errors included) carrying the upstream's id. */
  request(method: string, params: Params | undefined, hooks: CallHooks = {}): Promise<RpcResponse> {
    if (this.state === 'closed') return Promise.resolve(unavailable(null, new UpstreamError(this.name, 'closed', 'its session was closed')));
    const send = (p: Params | undefined) => new Promise<RpcResponse>((resolve) => this.start(method, p, hooks, resolve));
    // A modern upstream's input_required is asked of the caller and retried here, unless the caller relays it.
    return this.modern && hooks.onServerRequest ? send(params).then((res) => driveInputRequired(res, params, hooks, send)) : send(params);
  }

  private start(method: string, params: Params | undefined, hooks: CallHooks, resolve: Pending['resolve'], fail?: Pending['fail']): void {
    const id = ++this.seq;
    const p: Pending = { id, method, resolve, fail, hooks, timeoutMs: hooks.timeoutMs ?? this.manifest.timeoutMs };
    let sendParams = params;
    const meta = params?._meta as Record<string, unknown> | undefined;
    if (meta && meta.progressToken !== undefined) {
      p.clientToken = meta.progressToken as string | number;
      p.upstreamToken = `${this.tokenPrefix}${id}`;
      sendParams = { ...params, _meta: { ...meta, progressToken: p.upstreamToken } };
      this.byToken.set(p.upstreamToken, p);
    }
    this.pending.set(id, p);
    this.armTimer(p);
    const cancel = hooks.cancel;
    if (cancel) {
      if (cancel.aborted) return this.cancel(p, 'cancelled by client');
      p.offAbort = cancel.onAbort(() => this.cancel(p, String(cancel.reason ?? 'cancelled by client')));
    } else if (hooks.signal) {
      if (hooks.signal.aborted) return this.cancel(p, 'cancelled by client');
      p.onAbort = () => this.cancel(p, String(hooks.signal?.reason ?? 'cancelled by client'));
      hooks.signal.addEventListener('abort', p.onAbort, { once: true });
    }
    let headers = hooks.headers;
    if (this.modern) {
      sendParams = withModernEnvelope(this.init, sendParams);
      headers = { ...headers, ...modernHeaders(method, sendParams) };
    }
    const msg: RpcRequest = sendParams !== undefined ? { jsonrpc: '2.0', id, method, params: sendParams } : { jsonrpc: '2.0', id, method };
    // The signal is looked up only by a connector that reads it, so a call nobody cancels never makes one.
    const options: SendOptions = cancel ? new LazySignalOptions(headers, hooks.step, cancel) : { headers, signal: hooks.signal, step: hooks.step };
    this.transport.send(msg, options).catch((err: Error) => this.onSendFailure(p, msg, options, err));
  }

  notify(method: string, params?: Params, options?: SendOptions): void {
    if (this.state !== 'ready') return;
    this.transport.send(params ? { jsonrpc: '2.0', method, params } : { jsonrpc: '2.0', method }, options).catch(() => {});
  }

  /** Answer a server-to-client request; failures to deliver it are the transport's to report. */
  private answerServer(res: RpcResponse, id: RpcId): void {
    this.transport.send(res.id === id ? res : { ...res, id }, { relatedRequest: id }).catch(() => {});
  }

  private armTimer(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (!(p.timeoutMs > 0)) return;
    p.timer = setTimeout(() => {
      // initialize is never cancelled (MCP lifecycle): a late handshake simply fails.
      if (p.method !== 'initialize') this.notify('notifications/cancelled', { requestId: p.id, reason: 'timeout' }, { relatedRequest: p.id });
      this.fail(p, new UpstreamError(this.name, 'timeout', `it did not answer ${p.method} within ${p.timeoutMs} ms`, { method: p.method, timeoutMs: p.timeoutMs, field: p.method === 'initialize' ? '`connectTimeoutMs`' : '`timeoutMs`' }));
    }, p.timeoutMs);
  }

  private cancel(p: Pending, reason: string): void {
    if (!this.pending.has(p.id)) return;
    this.notify('notifications/cancelled', { requestId: p.id, reason }, { relatedRequest: p.id });
    this.settle(p, errorResponse(p.id, REQUEST_CANCELLED, `Request cancelled: ${reason}`));
  }

  private settle(p: Pending, res: RpcResponse): void {
    if (this.release(p)) p.resolve(res);
  }

  /** Settle a call that failed on the gateway's side: as data for the handshake, rendered once for everyone else. */
  private fail(p: Pending, err: UpstreamError): void {
    if (!this.release(p)) return;
    if (p.fail) p.fail(err);
    else p.resolve(unavailable(p.id, err));
  }

  private release(p: Pending): boolean {
    if (!this.pending.delete(p.id)) return false;
    if (p.timer) clearTimeout(p.timer);
    if (p.upstreamToken) this.byToken.delete(p.upstreamToken);
    if (p.offAbort) p.offAbort();
    else if (p.onAbort) p.hooks.signal?.removeEventListener('abort', p.onAbort);
    return true;
  }

  private onSendFailure(p: Pending, msg: RpcRequest, options: SendOptions, err: Error): void {
    if (err instanceof SessionExpiredError && p.method !== 'initialize') {
      // The upstream forgot our session (restart, expiry): initialize again and resend once.
      this.reinitialize()
        .then(() => this.transport.send(msg, options))
        .catch((e: unknown) => this.fail(p, asUpstreamError(this.name, e)));
      return;
    }
    this.fail(p, asUpstreamError(this.name, err));
  }

  private reinitialize(): Promise<void> {
    this.reinit ??= this.handshake().finally(() => {
      this.reinit = undefined;
    });
    return this.reinit;
  }

  private onMessage(msg: RpcMessage, relatedTo?: RpcId, bytes?: number): void {
    if (isResponse(msg)) {
      const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
      if (msg.error && typeof msg.error.message === 'string') relayedError(msg.error);
      if (p) {
        p.hooks.responseBytes = bytes;
        this.settle(p, msg);
      }
      return;
    }
    if (isRequest(msg)) {
      this.onServerRequest(msg, relatedTo);
      return;
    }
    if (!isNotification(msg)) return;
    if (msg.method === 'notifications/progress') {
      const token = msg.params?.progressToken;
      const p = typeof token === 'string' ? this.byToken.get(token) : undefined;
      if (!p) return;
      this.armTimer(p); // progress resets the call's timeout
      p.hooks.onNotification?.({ ...msg, params: { ...msg.params, progressToken: p.clientToken } });
      return;
    }
    if (msg.method === 'notifications/cancelled') return;
    // list_changed and resources/updated describe the session, not the call whose stream carried them: the session
    // handler invalidates caches and fans them out (to every client of a shared upstream, to subscribers only).
    const sessionLevel = msg.method === 'notifications/resources/updated' || msg.method.endsWith('/list_changed');
    let p = relatedTo !== undefined && !sessionLevel ? this.pending.get(relatedTo as number) : undefined;
    // A shared stdio session carries no stream: a log message while one client's calls run is that client's.
    if (!p && relatedTo === undefined && msg.method === 'notifications/message' && this.manifest.session === 'shared') p = this.soleCaller();
    if (p?.hooks.onNotification) p.hooks.onNotification(msg);
    else this.events.onNotification?.(msg);
  }

  /** The newest call taking notifications, while every such call belongs to one client; else undefined. */
  private soleCaller(): Pending | undefined {
    let found: Pending | undefined;
    for (const p of this.pending.values()) {
      if (!p.hooks.onNotification) continue;
      if (found && found.hooks.owner !== p.hooks.owner) return undefined;
      found = p;
    }
    return found;
  }

  private onServerRequest(msg: RpcRequest, relatedTo?: RpcId): void {
    if (msg.method === 'ping') {
      this.answerServer(resultResponse(msg.id, {}), msg.id);
      return;
    }
    let target = relatedTo !== undefined ? this.pending.get(relatedTo as number) : undefined;
    if (!target) {
      // stdio carries no stream: the newest call that can take a request is the one that caused it, but only while
      // every such call belongs to one client; otherwise guessing could hand one client's prompt to another.
      const owners = new Set<string | undefined>();
      for (const p of this.pending.values()) {
        if (!p.hooks.onServerRequest) continue;
        target = p;
        owners.add(p.hooks.owner);
      }
      if (owners.size > 1) {
        this.log.warn({ method: msg.method }, 'server-to-client request while calls of several clients are in flight; refused as ambiguous');
        this.answerServer(errorResponse(msg.id, -32603, `${msg.method} cannot be routed: calls of several clients are in flight on this shared session`), msg.id);
        return;
      }
    }
    const handler = target?.hooks.onServerRequest ?? this.events.onServerRequest;
    if (!handler) {
      this.answerServer(errorResponse(msg.id, -32601, `Client cannot handle ${msg.method}`), msg.id);
      return;
    }
    // Waiting on the client (a human, a model) is not the upstream being slow: pause the call's timeout.
    if (target?.timer) clearTimeout(target.timer);
    const resume = () => {
      if (target && this.pending.has(target.id)) this.armTimer(target);
    };
    handler(msg).then(
      (res) => {
        resume();
        this.answerServer(res, msg.id);
      },
      (err: Error) => {
        resume();
        this.answerServer(errorResponse(msg.id, -32603, err.message), msg.id);
      },
    );
  }

  private onTransportClose(cause?: UpstreamError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const why = cause ?? new UpstreamError(this.name, 'closed', 'its session was closed');
    for (const p of [...this.pending.values()]) this.fail(p, why);
    this.events.onClose?.(cause);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.transport.close();
    this.onTransportClose();
  }
}

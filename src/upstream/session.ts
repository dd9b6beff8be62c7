/**
 * One initialized MCP session with one upstream: request/response correlation, progress-token namespacing,
 * per-call timeouts reset by progress, cancellation, and routing of server-to-client requests to the call
 * that caused them. Failures come back as JSON-RPC error values, never as empty successes.
 */
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import {
  errorResponse,
  isNotification,
  isRequest,
  isResponse,
  REFUSAL_CODE,
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
import { SessionExpiredError, type UpstreamTransport } from './transport.js';

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
  timeoutMs?: number;
  /** Extra HTTP headers for this request (trace context, minted identity). */
  headers?: Record<string, string>;
  /** Who made the call (downstream session id): a request that cannot be tied to one call goes only to a sole owner. */
  owner?: string;
  /** The gateway step this call serves, for transports that tie upstream work to it (A2A tasks). */
  step?: Step;
}

export interface SessionEvents {
  onNotification?: (msg: RpcNotification) => void;
  onServerRequest?: (msg: RpcRequest) => Promise<RpcResponse>;
  onClose?: (why: string) => void;
}

interface Pending {
  id: number;
  method: string;
  resolve: (r: RpcResponse) => void;
  hooks: CallHooks;
  timer?: NodeJS.Timeout;
  timeoutMs: number;
  clientToken?: string | number;
  upstreamToken?: string;
  onAbort?: () => void;
}

export function unavailable(id: RpcId | null, server: string, detail: string): RpcResponse {
  return errorResponse(id, REFUSAL_CODE, `Upstream '${server}' is unavailable: ${detail}. The gateway restarts it with backoff; retry shortly.`, {
    reason: 'upstream_unavailable',
    server,
  });
}

let tokenSeq = 0;

export class UpstreamSession {
  state: 'new' | 'ready' | 'closed' = 'new';
  serverCapabilities: Record<string, unknown> = {};
  serverInfo: Record<string, unknown> = {};
  instructions?: string;
  protocolVersion?: string;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly byToken = new Map<string, Pending>();
  private reinit?: Promise<void>;
  /** Gateway-unique prefix so two clients' equal progress tokens never collide upstream. */
  private readonly tokenPrefix = `sy${(++tokenSeq).toString(36)}-`;

  constructor(
    readonly manifest: ServerManifest,
    readonly transport: UpstreamTransport,
    private readonly init: ClientInit,
    private readonly events: SessionEvents,
    private readonly log: Logger,
  ) {
    transport.onmessage = (m, related) => this.onMessage(m, related);
    transport.onclose = (why) => this.onTransportClose(why);
    transport.onerror = (err) => this.log.warn({ err: err.message }, 'upstream transport error');
  }

  get name(): string {
    return this.manifest.name;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  async connect(): Promise<void> {
    await this.transport.start();
    await this.handshake();
    this.state = 'ready';
    (this.transport as { openServerStream?: () => void }).openServerStream?.();
  }

  private async handshake(): Promise<void> {
    const res = await this.request('initialize', this.init as unknown as Params, { timeoutMs: Math.min(this.manifest.timeoutMs, 30_000) });
    if (res.error) throw new Error(`server ${this.name} refused initialize: ${res.error.message}`);
    const r = res.result as { protocolVersion?: string; capabilities?: Record<string, unknown>; serverInfo?: Record<string, unknown>; instructions?: string };
    this.protocolVersion = r.protocolVersion;
    this.serverCapabilities = r.capabilities ?? {};
    this.serverInfo = r.serverInfo ?? {};
    this.instructions = r.instructions;
    if (r.protocolVersion) this.transport.setProtocolVersion?.(r.protocolVersion);
    await this.transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /** Send a request; always resolves with a response (errors included) carrying the upstream's id. */
  request(method: string, params: Params | undefined, hooks: CallHooks = {}): Promise<RpcResponse> {
    if (this.state === 'closed') return Promise.resolve(unavailable(null, this.name, 'session closed'));
    const id = ++this.seq;
    return new Promise<RpcResponse>((resolve) => {
      const p: Pending = { id, method, resolve, hooks, timeoutMs: hooks.timeoutMs ?? this.manifest.timeoutMs };
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
      if (hooks.signal) {
        if (hooks.signal.aborted) return this.cancel(p, 'cancelled by client');
        p.onAbort = () => this.cancel(p, String(hooks.signal?.reason ?? 'cancelled by client'));
        hooks.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      const msg: RpcRequest = { jsonrpc: '2.0', id, method, ...(sendParams !== undefined ? { params: sendParams } : {}) };
      if (hooks.headers) (this.transport as { setRequestHeaders?: (id: RpcId, h: Record<string, string>) => void }).setRequestHeaders?.(id, hooks.headers);
      if (hooks.step) (this.transport as { setRequestStep?: (id: RpcId, step: Step) => void }).setRequestStep?.(id, hooks.step);
      this.transport.send(msg).catch((err: Error) => this.onSendFailure(p, msg, err));
    });
  }

  notify(method: string, params?: Params): void {
    if (this.state !== 'ready') return;
    this.transport.send({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }).catch(() => {});
  }

  private armTimer(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (!(p.timeoutMs > 0)) return;
    p.timer = setTimeout(() => {
      this.notify('notifications/cancelled', { requestId: p.id, reason: 'timeout' });
      this.settle(p, errorResponse(p.id, REFUSAL_CODE, `Upstream '${this.name}' did not answer ${p.method} within ${p.timeoutMs} ms; raise timeoutMs in its manifest if it is legitimately slow.`, {
        reason: 'upstream_timeout',
        server: this.name,
        timeoutMs: p.timeoutMs,
      }));
    }, p.timeoutMs);
  }

  private cancel(p: Pending, reason: string): void {
    if (!this.pending.has(p.id)) return;
    this.notify('notifications/cancelled', { requestId: p.id, reason });
    this.settle(p, errorResponse(p.id, REQUEST_CANCELLED, `Request cancelled: ${reason}`));
  }

  private settle(p: Pending, res: RpcResponse): void {
    if (!this.pending.delete(p.id)) return;
    if (p.timer) clearTimeout(p.timer);
    if (p.upstreamToken) this.byToken.delete(p.upstreamToken);
    if (p.onAbort) p.hooks.signal?.removeEventListener('abort', p.onAbort);
    p.resolve(res);
  }

  private onSendFailure(p: Pending, msg: RpcRequest, err: Error): void {
    if (err instanceof SessionExpiredError && p.method !== 'initialize') {
      // The upstream forgot our session (restart, expiry): initialize again and resend once.
      this.reinitialize()
        .then(() => this.transport.send(msg))
        .catch((e: Error) => this.settle(p, unavailable(p.id, this.name, e.message)));
      return;
    }
    this.settle(p, unavailable(p.id, this.name, err.message));
  }

  private reinitialize(): Promise<void> {
    this.reinit ??= this.handshake().finally(() => {
      this.reinit = undefined;
    });
    return this.reinit;
  }

  private onMessage(msg: RpcMessage, relatedTo?: RpcId): void {
    if (isResponse(msg)) {
      const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
      if (p) this.settle(p, msg);
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
    const p = relatedTo !== undefined && !sessionLevel ? this.pending.get(relatedTo as number) : undefined;
    if (p?.hooks.onNotification) p.hooks.onNotification(msg);
    else this.events.onNotification?.(msg);
  }

  private onServerRequest(msg: RpcRequest, relatedTo?: RpcId): void {
    if (msg.method === 'ping') {
      this.transport.send(resultResponse(msg.id, {})).catch(() => {});
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
        this.transport.send(errorResponse(msg.id, -32603, `${msg.method} cannot be routed: calls of several clients are in flight on this shared session`)).catch(() => {});
        return;
      }
    }
    const handler = target?.hooks.onServerRequest ?? this.events.onServerRequest;
    if (!handler) {
      this.transport.send(errorResponse(msg.id, -32601, `Client cannot handle ${msg.method}`)).catch(() => {});
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
        this.transport.send({ ...res, id: msg.id }).catch(() => {});
      },
      (err: Error) => {
        resume();
        this.transport.send(errorResponse(msg.id, -32603, err.message)).catch(() => {});
      },
    );
  }

  private onTransportClose(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const p of [...this.pending.values()]) this.settle(p, unavailable(p.id, this.name, why));
    this.events.onClose?.(why);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.transport.close();
    this.onTransportClose('closed');
  }
}

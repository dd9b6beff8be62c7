/** One downstream MCP session: who it is, what it declared, its in-flight calls and its own stream. */
import { randomUUID } from 'node:crypto';
import type { Caller } from './types.js';
import type { ClientInit } from '../upstream/session.js';
import type { RpcId, RpcMessage, RpcRequest, RpcResponse } from '../util/jsonrpc.js';
import type { SessionStream } from './channel.js';

export interface View {
  /** Set for /servers/{name}/mcp: one upstream, unprefixed names. */
  single?: string;
}

interface PendingClientRequest {
  resolve: (res: RpcResponse) => void;
  timer: NodeJS.Timeout;
}

const CLIENT_REQUEST_TIMEOUT_MS = 10 * 60_000;

interface Abortable {
  abort(reason?: unknown): void;
}

/**
 * The calls of one session in flight, by client request id. Most sessions have one at a time: it is held in two
 * fields, and only calls beside it go into a Map, so a call adds and removes no hash table entry (a Map emptied
 * again reallocates its table).
 */
export class InFlightCalls {
  private firstId: RpcId | undefined;
  private first: Abortable | undefined;
  private others?: Map<RpcId, Abortable>;

  get size(): number {
    return (this.first === undefined ? 0 : 1) + (this.others?.size ?? 0);
  }

  get(id: RpcId): Abortable | undefined {
    return this.first !== undefined && this.firstId === id ? this.first : this.others?.get(id);
  }

  set(id: RpcId, call: Abortable): this {
    if (this.first !== undefined && this.firstId !== id) (this.others ??= new Map()).set(id, call);
    else if (this.others?.has(id)) this.others.set(id, call);
    else {
      this.firstId = id;
      this.first = call;
    }
    return this;
  }

  delete(id: RpcId): boolean {
    if (this.first === undefined || this.firstId !== id) return this.others?.delete(id) ?? false;
    this.first = this.firstId = undefined;
    return true;
  }

  /** Every call in flight (a copy: aborting one may remove it). */
  values(): Abortable[] {
    const out = this.first === undefined ? [] : [this.first];
    if (this.others) out.push(...this.others.values());
    return out;
  }
}
/** Messages kept for a session without a GET stream; bounded so an idle session stays small. */
const BACKLOG_MAX = 100;

export class ClientSession {
  readonly createdAt = Date.now();
  lastSeen = Date.now();
  initialized = false;
  /** This session started its workflow (rather than joining one): ending it ends the workflow. */
  rootOfWorkflow = true;
  logLevel?: string;
  /** Bits of the list kinds this client has been answered: only those can have changed for it. */
  listed = 0;
  /** `{server}\0{kind}` of lists answered while that server was still starting for this session (made on first use). */
  awaiting?: Set<string>;
  /** Subscribed resource URI as the client wrote it → the server it was routed to. */
  readonly subscriptions = new Map<string, string>();
  /** client request id → what aborts the in-flight call, for notifications/cancelled. */
  readonly inFlight = new InFlightCalls();
  /** Requests to the client awaiting its answer; made on first use, as most sessions never ask. */
  private toClient?: Map<string, PendingClientRequest>;
  private seq = 0;
  private stream?: SessionStream;
  /** Messages for the session stream while no GET stream is open (bounded; made on first use). */
  private backlog?: RpcMessage[];
  closed = false;
  private closeListeners?: Array<() => void>;

  constructor(
    readonly init: ClientInit,
    readonly caller: Caller,
    readonly workflowId: string,
    readonly view: View,
    readonly traceparent?: string,
    /** Upstream sessions are keyed by it; stateless (2026-07-28) requests of one caller share one. */
    readonly id: string = randomUUID(),
  ) {}

  get protocolVersion(): string {
    return this.init.protocolVersion;
  }

  get capabilities(): Record<string, unknown> {
    return this.init.capabilities;
  }

  attachStream(stream: SessionStream | undefined): void {
    this.stream = stream;
    if (stream && this.backlog) for (const m of this.backlog.splice(0)) stream.send(m);
  }

  get hasStream(): boolean {
    return this.stream !== undefined;
  }

  /** Send on the session's own stream (or keep it until one opens). */
  push(msg: RpcMessage): void {
    if (this.closed) return;
    if (this.stream) this.stream.send(msg);
    else {
      const backlog = (this.backlog ??= []);
      backlog.push(msg);
      if (backlog.length > BACKLOG_MAX) backlog.shift();
    }
  }

  /**
   * Ask the client something (sampling, elicitation, roots). `send` puts the request on the right stream;
   * the answer arrives later as a response message on a POST.
   */
  ask(req: Omit<RpcRequest, 'id' | 'jsonrpc'>, send: (msg: RpcRequest) => void): Promise<RpcResponse> {
    const id = `sy-${++this.seq}`;
    const toClient = (this.toClient ??= new Map());
    return new Promise<RpcResponse>((resolve) => {
      const timer = setTimeout(() => {
        toClient.delete(id);
        resolve({ jsonrpc: '2.0', id, error: { code: -32001, message: `Client did not answer ${req.method} in time` } });
      }, CLIENT_REQUEST_TIMEOUT_MS);
      timer.unref();
      toClient.set(id, { resolve, timer });
      send({ jsonrpc: '2.0', id, method: req.method, ...(req.params ? { params: req.params } : {}) });
    });
  }

  /** A response from the client to one of our requests; false when nobody waits for it. */
  answer(res: RpcResponse): boolean {
    const p = this.toClient?.get(String(res.id));
    if (!p) return false;
    this.toClient!.delete(String(res.id));
    clearTimeout(p.timer);
    p.resolve(res);
    return true;
  }

  /** Run `fn` when the session closes (e.g. to forget its stream's events). */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else (this.closeListeners ??= []).push(fn);
  }

  close(): void {
    if (!this.closed) for (const fn of this.closeListeners?.splice(0) ?? []) fn();
    this.closed = true;
    for (const c of this.inFlight.values()) c.abort('session closed');
    for (const [id, p] of this.toClient ?? []) {
      clearTimeout(p.timer);
      p.resolve({ jsonrpc: '2.0', id, error: { code: -32001, message: 'session closed' } });
    }
    this.toClient?.clear();
  }
}

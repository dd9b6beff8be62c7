/**
 * Streamable HTTP upstream on undici's pooled keep-alive connections (faster than node:http's agent, see
 * docs/decisions). JSON-RPC envelopes and SSE frames are read as data; messages that arrive on a POST's own stream
 * are tagged with that request's id so server-to-client requests and progress reach the downstream call that caused them.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { Pool, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import { isRequest, type RpcId, type RpcMessage } from '../util/jsonrpc.js';
import { keepWire } from '../util/raw-response.js';
import { safeUrl } from '../util/shown.js';
import { describeNetworkError, UpstreamError } from './errors.js';
import { MODERN_UPSTREAM_REVISION } from './modern.js';
import { SessionExpiredError, type SendOptions, type UpstreamTransport } from './transport.js';

/** One connection pool per upstream origin, shared by every session with it (as the global agent was). */
const pools = new Map<string, Pool>();
function poolFor(url: URL): Pool {
  let p = pools.get(url.origin);
  if (!p) pools.set(url.origin, (p = new Pool(url.origin, { connections: 512, keepAliveTimeout: 10_000 })));
  return p;
}

const SESSION_ID_LENGTH = 'mcp-session-id'.length;
const CONTENT_TYPE_LENGTH = 'content-type'.length;

/** The session's timers bound every call (timeoutMs, reset by progress); undici's own 300 s limits must not cut in. */
const NO_TIMEOUTS = { headersTimeout: 0, bodyTimeout: 0 } as const;

interface SseReader {
  data: (chunk: Buffer) => void;
  close: () => void;
}

export class StreamableHttpTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  private sid?: string;
  private protocolVersion?: string;
  /** A POST's headers while the session id and revision stay the same: built once, not per call (undici only reads them). */
  private postHeaders?: Readonly<Record<string, string>>;
  private readonly url: URL;
  private readonly path: string;
  private readonly pool: Pool;
  /** Basic credentials written into the manifest's url (user:password@host), which undici does not send by itself. */
  private readonly basicAuth?: string;
  private getStream?: Readable;
  /** True from the GET stream's request until that stream ends: one at a time. */
  private serverStreamWanted = false;
  private lastEventId?: string;
  private closed = false;
  /** Aborts of the POSTs still streaming (a 2026-07-28 subscriptions/listen lasts as long as the session). */
  private readonly streaming = new Set<(err?: Error) => void>();

  constructor(private readonly manifest: ServerManifest, private readonly log: Logger) {
    if (!manifest.url) throw new Error(`server ${manifest.name}: http transport needs a url`);
    this.url = new URL(manifest.url);
    this.path = this.url.pathname + this.url.search;
    this.pool = poolFor(this.url);
    if (this.url.username || this.url.password) {
      this.basicAuth = `Basic ${Buffer.from(`${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}`).toString('base64')}`;
    }
  }

  async start(): Promise<void> {}

  get sessionId(): string | undefined {
    return this.sid;
  }

  set sessionId(id: string | undefined) {
    if (id !== this.sid) this.postHeaders = undefined;
    this.sid = id;
  }

  setProtocolVersion(version: string | undefined): void {
    if (version !== this.protocolVersion) this.postHeaders = undefined;
    this.protocolVersion = version;
  }

  private baseHeaders(): Record<string, string> {
    const h: Record<string, string> = this.basicAuth ? { authorization: this.basicAuth, ...this.manifest.headers } : { ...this.manifest.headers };
    if (this.sessionId) h['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) h['mcp-protocol-version'] = this.protocolVersion;
    return h;
  }

  send(message: RpcMessage, options?: SendOptions): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    // undici sizes a string body itself (content-length), so the body is not measured here.
    const body = JSON.stringify(message);
    const relatedTo = isRequest(message) ? message.id : undefined;
    let headers = (this.postHeaders ??= { ...this.baseHeaders(), 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
    if (options?.headers) headers = { ...headers, ...options.headers };
    return new Promise((resolve, reject) => {
      const exchange = new PostExchange(this, relatedTo, options, resolve, reject);
      try {
        this.pool.dispatch({ path: this.path, method: 'POST', headers, body, ...NO_TIMEOUTS }, exchange);
      } catch (err) {
        reject(this.unreachable(err));
      }
    });
  }

  /** A POST's exchange started streaming (its abort is kept so close() can end it) or ended. */
  track(abort: (err?: Error) => void, on: boolean): void {
    if (on) this.streaming.add(abort);
    else this.streaming.delete(abort);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The POST's answer is an SSE stream: its reader (related messages are tagged with the request's id). */
  eventStream(relatedTo: RpcId | undefined, options: SendOptions | undefined): SseReader {
    return this.sseReader(relatedTo, options, 0);
  }

  /** The upstream forgot the session (404 to a request that carried one): true when that is what happened. */
  sessionLost(status: number): boolean {
    if (status !== 404 || !this.sessionId) return false;
    this.sessionId = undefined;
    return true;
  }

  transportError(err: Error): void {
    this.onerror?.(err);
  }

  closedError(): UpstreamError {
    return new UpstreamError(this.manifest.name, 'closed', 'its connection was closed');
  }

  unreachable(err: unknown): UpstreamError {
    const why = describeNetworkError(err);
    return new UpstreamError(this.manifest.name, 'unreachable', why, { operator: `${safeUrl(this.url)} is unreachable: ${why}`, field: '`url`' });
  }

  /** A JSON answer to a POST: relayed when it is JSON-RPC (a JSON-RPC error counts even on a 4xx), else an HTTP failure. */
  onJsonBody(status: number, raw: Buffer, relatedTo: RpcId | undefined, resolve: () => void, reject: (err: Error) => void): void {
    const text = raw.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    // A JSON-RPC error body with our id is a real answer even on a 4xx: relay it.
    const isRpc = parsed && typeof parsed === 'object' && 'jsonrpc' in (parsed as object);
    if (isRpc && (status < 300 || (parsed as { id?: unknown }).id != null)) {
      resolve();
      if (!Array.isArray(parsed)) {
        keepWire(parsed as RpcMessage, text);
        this.onmessage?.(parsed as RpcMessage, relatedTo, raw.length);
      }
      else for (const m of parsed) this.onmessage?.(m as RpcMessage, relatedTo);
      return;
    }
    if (status >= 200 && status < 300) {
      resolve();
      return;
    }
    if (text) this.log.debug({ status, body: text.slice(0, 200) }, 'upstream answered an HTTP error');
    reject(new UpstreamError(this.manifest.name, 'http_status', `it answered HTTP ${status}`, { operator: `${safeUrl(this.url)} answered HTTP ${status}`, field: '`url` and `headers`', status }));
  }

  /**
   * Read one SSE response. When a request's stream ends before its response arrived, the server meant us to
   * resume: reconnect with GET and Last-Event-ID after its `retry` delay.
   */
  private readSse(res: Readable, relatedTo: RpcId | undefined, options?: SendOptions, attempt = 0): void {
    const reader = this.sseReader(relatedTo, options, attempt);
    res.on('data', reader.data);
    // Destroying the GET stream on close aborts it: that is no transport error.
    res.on('error', (err) => this.closed || this.onerror?.(err));
    res.on('close', reader.close);
  }

  /** Feed one SSE response's bytes in; `close` when it ends. */
  private sseReader(relatedTo: RpcId | undefined, options: SendOptions | undefined, attempt: number): SseReader {
    let lastId: string | undefined;
    let retryMs = 1000;
    let answered = false;
    const parser = createParser({
      onRetry: (ms) => {
        retryMs = ms;
      },
      onEvent: (ev) => {
        if (ev.id) {
          lastId = ev.id;
          this.lastEventId = ev.id;
        }
        if (!ev.data) return; // priming event
        if (ev.event && ev.event !== 'message') return;
        let msg: RpcMessage;
        try {
          msg = JSON.parse(ev.data) as RpcMessage;
        } catch {
          this.log.warn('upstream sent a non-JSON SSE event; ignored');
          return;
        }
        if (relatedTo !== undefined && (msg as { id?: unknown }).id === relatedTo && !('method' in msg)) answered = true;
        keepWire(msg, ev.data);
        this.onmessage?.(msg, relatedTo, Buffer.byteLength(ev.data));
      },
    });
    // Decoded here rather than with setEncoding: not every client's body stream honours it, and a character may span chunks.
    const decoder = new StringDecoder('utf8');
    return {
      data: (chunk: Buffer) => parser.feed(decoder.write(chunk)),
      close: () => {
        if (relatedTo === undefined || answered || this.closed || options?.signal?.aborted) return;
        // 2026-07-28 has no resumption: a stream that ends unanswered ends its request.
        if (this.protocolVersion === MODERN_UPSTREAM_REVISION) return this.onmessage?.({ jsonrpc: '2.0', id: relatedTo, error: { code: -32603, message: 'The upstream ended the response stream before answering.' } });
        if (!lastId || attempt >= 5) return;
        setTimeout(() => this.resume(lastId!, relatedTo, options, attempt + 1), retryMs).unref();
      },
    };
  }

  private resume(lastEventId: string, relatedTo: RpcId, options: SendOptions | undefined, attempt: number): void {
    if (this.closed || options?.signal?.aborted) return;
    const headers = this.baseHeaders();
    headers.accept = 'text/event-stream';
    headers['last-event-id'] = lastEventId;
    this.pool.request({ path: this.path, method: 'GET', headers, ...NO_TIMEOUTS }).then(
      (res) => {
        if (res.statusCode !== 200) {
          res.body.dump().catch(() => {});
          this.log.warn({ status: res.statusCode }, 'upstream refused to resume a dropped stream');
          return;
        }
        this.readSse(res.body, relatedTo, options, attempt);
      },
      (err: Error) => this.log.warn({ err: err.message }, 'resuming a dropped upstream stream failed'),
    );
  }

  /** Open the GET stream for server-initiated messages (list_changed, resources/updated, …); 405 means none. */
  openServerStream(): void {
    if (this.closed || this.serverStreamWanted) return;
    this.serverStreamWanted = true;
    const headers = this.baseHeaders();
    headers.accept = 'text/event-stream';
    if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
    this.pool.request({ path: this.path, method: 'GET', headers, ...NO_TIMEOUTS }).then(
      (res) => {
        if (this.closed || res.statusCode !== 200 || !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
          // dump() drains and discards; destroy() would raise an AbortError nobody listens for.
          res.body.dump().catch(() => {});
          this.serverStreamWanted = false;
          return;
        }
        this.getStream = res.body;
        this.readSse(res.body, undefined);
        res.body.on('close', () => {
          this.getStream = undefined;
          this.serverStreamWanted = false;
          // The server may drop the stream at any time; reconnect unless we are closing.
          if (!this.closed) setTimeout(() => this.openServerStream(), 1000).unref();
        });
      },
      () => {
        this.serverStreamWanted = false;
      },
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.getStream?.destroy();
    for (const abort of this.streaming) abort();
    this.streaming.clear();
    if (this.sessionId) {
      const headers = this.baseHeaders();
      try {
        const res = await this.pool.request({ path: this.path, method: 'DELETE', headers, signal: AbortSignal.timeout(2000) });
        await res.body.dump();
      } catch {
        // The upstream may already be gone; the session ends either way.
      }
    }
    this.onclose?.();
  }
}

/**
 * One POST on undici's dispatcher, as one object per call rather than a closure per callback: response bytes go
 * straight to the SSE reader or the JSON body, with no stream objects. `options.signal` is read only once a streamed
 * answer needs it (it may be made on demand).
 */
class PostExchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private sse?: SseReader;
  private chunks?: Buffer[];
  private settled = false;
  private abort?: (err?: Error) => void;

  constructor(
    private readonly t: StreamableHttpTransport,
    private readonly relatedTo: RpcId | undefined,
    private readonly options: SendOptions | undefined,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    this.t.track(abort, true);
  }

  onHeaders(statusCode: number, raw: Buffer[]): boolean {
    this.status = statusCode;
    let sid: string | undefined;
    let type = '';
    for (let i = 0; i + 1 < raw.length; i += 2) {
      // Only the two names wanted are decoded; the others are told apart by their length.
      const len = raw[i]!.length;
      if (len !== SESSION_ID_LENGTH && len !== CONTENT_TYPE_LENGTH) continue;
      const name = raw[i]!.toString('latin1').toLowerCase();
      if (name === 'mcp-session-id') sid = raw[i + 1]!.toString('latin1');
      else if (name === 'content-type') type = raw[i + 1]!.toString('latin1');
    }
    if (sid) this.t.sessionId = sid;
    if (statusCode === 202 || statusCode === 204) {
      this.settled = true;
      this.resolve();
      return true;
    }
    if (this.t.sessionLost(statusCode)) {
      this.settled = true;
      this.reject(new SessionExpiredError());
      return true;
    }
    if (statusCode >= 200 && statusCode < 300 && type.startsWith('text/event-stream')) {
      this.settled = true;
      this.sse = this.t.eventStream(this.relatedTo, this.options);
      this.resolve();
      return true;
    }
    this.chunks = [];
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.sse) this.sse.data(chunk);
    else this.chunks?.push(chunk);
    return true;
  }

  onComplete(): void {
    this.done();
    if (this.sse) return this.sse.close();
    const chunks = this.chunks;
    if (!chunks) return;
    this.settled = true;
    this.t.onJsonBody(this.status, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), this.relatedTo, this.resolve, this.reject);
  }

  onError(err: Error): void {
    this.done();
    // Closing aborts the streams still open: that is no transport error.
    if (this.t.isClosed) {
      if (this.sse) return this.sse.close();
      if (!this.settled) this.reject(this.t.closedError());
      return;
    }
    if (this.sse) {
      this.t.transportError(err);
      return this.sse.close();
    }
    if (!this.settled) this.reject(this.t.unreachable(err));
  }

  private done(): void {
    if (this.abort) this.t.track(this.abort, false);
  }
}

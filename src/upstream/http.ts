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
  sessionId?: string;
  private protocolVersion?: string;
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

  setProtocolVersion(version: string | undefined): void {
    this.protocolVersion = version;
  }

  private baseHeaders(): Record<string, string> {
    const h: Record<string, string> = this.basicAuth ? { authorization: this.basicAuth, ...this.manifest.headers } : { ...this.manifest.headers };
    if (this.sessionId) h['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) h['mcp-protocol-version'] = this.protocolVersion;
    return h;
  }

  send(message: RpcMessage, options?: SendOptions): Promise<void> {
    if (this.closed) return Promise.reject(new UpstreamError(this.manifest.name, 'closed', 'its connection was closed'));
    const body = JSON.stringify(message);
    const relatedTo = isRequest(message) ? message.id : undefined;
    const headers = this.baseHeaders();
    headers['content-type'] = 'application/json';
    headers.accept = 'application/json, text/event-stream';
    headers['content-length'] = String(Buffer.byteLength(body));
    if (options?.headers) Object.assign(headers, options.headers);
    return this.post(headers, body, relatedTo, options);
  }

  /** The POST on undici's dispatcher: response bytes go straight to the SSE reader or the JSON body, with no stream objects. */
  /** `options.signal` is read only once a streamed answer needs it (it may be made on demand). */
  private post(headers: Record<string, string>, body: string, relatedTo: RpcId | undefined, options: SendOptions | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      let status = 0;
      let sse: SseReader | undefined;
      let chunks: Buffer[] | undefined;
      let settled = false;
      let abort: ((err?: Error) => void) | undefined;
      const done = () => abort && this.streaming.delete(abort);
      const handler: Dispatcher.DispatchHandler = {
        onConnect: (a) => {
          abort = a;
          this.streaming.add(a);
        },
        onHeaders: (statusCode, raw) => {
          status = statusCode;
          let sid: string | undefined;
          let type = '';
          for (let i = 0; i + 1 < raw.length; i += 2) {
            const name = raw[i]!.toString('latin1').toLowerCase();
            if (name === 'mcp-session-id') sid = raw[i + 1]!.toString('latin1');
            else if (name === 'content-type') type = raw[i + 1]!.toString('latin1');
          }
          if (sid) this.sessionId = sid;
          if (status === 202 || status === 204) {
            settled = true;
            resolve();
            return true;
          }
          if (status === 404 && this.sessionId) {
            settled = true;
            this.sessionId = undefined;
            reject(new SessionExpiredError());
            return true;
          }
          if (status >= 200 && status < 300 && type.startsWith('text/event-stream')) {
            settled = true;
            sse = this.sseReader(relatedTo, options, 0);
            resolve();
            return true;
          }
          chunks = [];
          return true;
        },
        onData: (chunk) => {
          if (sse) sse.data(chunk);
          else chunks?.push(chunk);
          return true;
        },
        onComplete: () => {
          done();
          if (sse) return sse.close();
          if (!chunks) return;
          settled = true;
          this.onJsonBody(status, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), relatedTo, resolve, reject);
        },
        onError: (err) => {
          done();
          // Closing aborts the streams still open: that is no transport error.
          if (this.closed) {
            if (sse) return sse.close();
            if (!settled) reject(new UpstreamError(this.manifest.name, 'closed', 'its connection was closed'));
            return;
          }
          if (sse) {
            this.onerror?.(err);
            return sse.close();
          }
          if (!settled) reject(this.unreachable(err));
        },
      };
      try {
        this.pool.dispatch({ path: this.path, method: 'POST', headers, body, ...NO_TIMEOUTS }, handler);
      } catch (err) {
        reject(this.unreachable(err));
      }
    });
  }

  private unreachable(err: unknown): UpstreamError {
    const why = describeNetworkError(err);
    return new UpstreamError(this.manifest.name, 'unreachable', why, { operator: `${safeUrl(this.url)} is unreachable: ${why}`, field: '`url`' });
  }

  /** A JSON answer to a POST: relayed when it is JSON-RPC (a JSON-RPC error counts even on a 4xx), else an HTTP failure. */
  private onJsonBody(status: number, raw: Buffer, relatedTo: RpcId | undefined, resolve: () => void, reject: (err: Error) => void): void {
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
      if (!Array.isArray(parsed)) this.onmessage?.(parsed as RpcMessage, relatedTo, raw.length);
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

/**
 * Streamable HTTP upstream on pooled keep-alive connections. JSON-RPC envelopes and SSE frames are read as data;
 * messages that arrive on a POST's own stream are tagged with that request's id so server-to-client requests
 * and progress reach the downstream call that caused them.
 */
import http from 'node:http';
import https from 'node:https';
import { createParser } from 'eventsource-parser';
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import { isRequest, type RpcId, type RpcMessage } from '../util/jsonrpc.js';
import { safeUrl } from '../util/shown.js';
import { describeNetworkError, UpstreamError } from './errors.js';
import { SessionExpiredError, type SendOptions, type UpstreamTransport } from './transport.js';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 512, keepAliveMsecs: 10_000 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 512, keepAliveMsecs: 10_000 });

export class StreamableHttpTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  sessionId?: string;
  private protocolVersion?: string;
  private readonly url: URL;
  private readonly lib: typeof http | typeof https;
  private readonly agent: http.Agent;
  private getStream?: http.ClientRequest;
  private lastEventId?: string;
  private closed = false;

  constructor(private readonly manifest: ServerManifest, private readonly log: Logger) {
    if (!manifest.url) throw new Error(`server ${manifest.name}: http transport needs a url`);
    this.url = new URL(manifest.url);
    this.lib = this.url.protocol === 'https:' ? https : http;
    this.agent = this.url.protocol === 'https:' ? httpsAgent : httpAgent;
  }

  async start(): Promise<void> {}

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  private baseHeaders(): Record<string, string> {
    const h: Record<string, string> = { ...this.manifest.headers };
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
    const signal = options?.signal;
    return new Promise((resolve, reject) => {
      const req = this.lib.request(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
        const status = res.statusCode ?? 0;
        const sid = res.headers['mcp-session-id'];
        if (typeof sid === 'string' && sid) this.sessionId = sid;
        if (status === 202 || status === 204) {
          res.resume();
          resolve();
          return;
        }
        if (status === 404 && this.sessionId) {
          res.resume();
          this.sessionId = undefined;
          reject(new SessionExpiredError());
          return;
        }
        const type = String(res.headers['content-type'] ?? '');
        if (status >= 200 && status < 300 && type.startsWith('text/event-stream')) {
          resolve();
          this.readSse(res, relatedTo, signal);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
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
          reject(new UpstreamError(this.manifest.name, 'http_status', `it answered HTTP ${status}`, { operator: `${safeUrl(this.url)} answered HTTP ${status}`, field: '`url` and `headers`' }));
        });
      });
      req.on('error', (err) => {
        const why = describeNetworkError(err);
        reject(new UpstreamError(this.manifest.name, 'unreachable', why, { operator: `${safeUrl(this.url)} is unreachable: ${why}`, field: '`url`' }));
      });
      req.end(body);
    });
  }

  /**
   * Read one SSE response. When a request's stream ends before its response arrived, the server meant us to
   * resume: reconnect with GET and Last-Event-ID after its `retry` delay.
   */
  private readSse(res: http.IncomingMessage, relatedTo: RpcId | undefined, signal?: AbortSignal, attempt = 0): void {
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
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => parser.feed(chunk));
    res.on('error', (err) => this.onerror?.(err));
    if (relatedTo === undefined) return;
    res.on('close', () => {
      if (answered || this.closed || signal?.aborted || !lastId || attempt >= 5) return;
      setTimeout(() => this.resume(lastId!, relatedTo, signal, attempt + 1), retryMs).unref();
    });
  }

  private resume(lastEventId: string, relatedTo: RpcId, signal: AbortSignal | undefined, attempt: number): void {
    if (this.closed || signal?.aborted) return;
    const headers = this.baseHeaders();
    headers.accept = 'text/event-stream';
    headers['last-event-id'] = lastEventId;
    const req = this.lib.request(this.url, { method: 'GET', headers, agent: this.agent }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        this.log.warn({ status: res.statusCode }, 'upstream refused to resume a dropped stream');
        return;
      }
      this.readSse(res, relatedTo, signal, attempt);
    });
    req.on('error', (err) => this.log.warn({ err: err.message }, 'resuming a dropped upstream stream failed'));
    req.end();
  }

  /** Open the GET stream for server-initiated messages (list_changed, resources/updated, …); 405 means none. */
  openServerStream(): void {
    if (this.closed || this.getStream) return;
    const headers = this.baseHeaders();
    headers.accept = 'text/event-stream';
    if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
    const req = this.lib.request(this.url, { method: 'GET', headers, agent: this.agent }, (res) => {
      if (res.statusCode !== 200 || !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        res.resume();
        this.getStream = undefined;
        return;
      }
      this.readSse(res, undefined);
      res.on('close', () => {
        this.getStream = undefined;
        // The server may drop the stream at any time; reconnect unless we are closing.
        if (!this.closed) setTimeout(() => this.openServerStream(), 1000).unref();
      });
    });
    req.on('error', () => {
      this.getStream = undefined;
    });
    req.end();
    this.getStream = req;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.getStream?.destroy();
    if (this.sessionId) {
      const headers = this.baseHeaders();
      await new Promise<void>((resolve) => {
        const req = this.lib.request(this.url, { method: 'DELETE', headers, agent: this.agent, timeout: 2000 }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => resolve());
        req.on('timeout', () => {
          req.destroy();
          resolve();
        });
        req.end();
      });
    }
    this.onclose?.();
  }
}

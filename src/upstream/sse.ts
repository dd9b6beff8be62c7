/** Legacy HTTP+SSE upstream (protocol 2024-11-05) through the SDK's client transport, which gets that handshake right. */
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ServerManifest } from '../config/types.js';
import type { RpcMessage } from '../util/jsonrpc.js';
import { safeUrl } from '../util/shown.js';
import { describeNetworkError, UpstreamError } from './errors.js';
import type { UpstreamTransport } from './transport.js';

/** The SDK's errors carry an HTTP status as `code` or in the message; anything else is a network failure. */
function failure(m: ServerManifest, err: unknown): UpstreamError {
  const e = err as Error & { code?: unknown };
  const status = typeof e?.code === 'number' ? e.code : Number(/\bHTTP (\d{3})\b|status code \((\d{3})\)/.exec(e?.message ?? '')?.slice(1).find(Boolean));
  if (status >= 400) return new UpstreamError(m.name, 'http_status', `it answered HTTP ${status}`, { operator: `${safeUrl(m.url!)} answered HTTP ${status}`, field: '`url` and `headers`' });
  const why = describeNetworkError(err);
  return new UpstreamError(m.name, 'unreachable', why, { operator: `${safeUrl(m.url!)} is unreachable: ${why}`, field: '`url`' });
}

export class LegacySseTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  private readonly inner: SSEClientTransport;
  private closed = false;

  constructor(private readonly manifest: ServerManifest) {
    if (!manifest.url) throw new Error(`server ${manifest.name}: sse transport needs a url`);
    const headers = manifest.headers;
    this.inner = new SSEClientTransport(new URL(manifest.url), {
      requestInit: { headers },
      eventSourceInit: {
        fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
      },
    });
    this.inner.onmessage = (m: JSONRPCMessage) => this.onmessage?.(m as RpcMessage);
    this.inner.onerror = (e: Error) => this.onerror?.(e);
    this.inner.onclose = () => {
      if (this.closed) return;
      this.closed = true;
      this.onclose?.(new UpstreamError(manifest.name, 'closed', 'its event stream closed'));
    };
  }

  start(): Promise<void> {
    return this.inner.start().catch((err: unknown) => {
      throw failure(this.manifest, err);
    });
  }

  /** Legacy SSE POSTs go through the SDK, which takes no per-message headers: trace context does not cross it. */
  send(message: RpcMessage): Promise<void> {
    return this.inner.send(message as JSONRPCMessage).catch((err: unknown) => {
      throw failure(this.manifest, err);
    });
  }

  async close(): Promise<void> {
    const first = !this.closed;
    this.closed = true;
    await this.inner.close();
    if (first) this.onclose?.();
  }
}

/** Legacy HTTP+SSE upstream (protocol 2024-11-05) through the SDK's client transport, which gets that handshake right. */
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ServerManifest } from '../config/types.js';
import type { RpcMessage } from '../util/jsonrpc.js';
import type { UpstreamTransport } from './transport.js';

export class LegacySseTransport implements UpstreamTransport {
  onmessage?: UpstreamTransport['onmessage'];
  onclose?: UpstreamTransport['onclose'];
  onerror?: UpstreamTransport['onerror'];
  private readonly inner: SSEClientTransport;
  private closed = false;

  constructor(manifest: ServerManifest) {
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
      this.onclose?.('stream closed');
    };
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  send(message: RpcMessage): Promise<void> {
    return this.inner.send(message as JSONRPCMessage);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

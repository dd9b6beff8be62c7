/**
 * 2026-07-28 on `switchyard stdio`: a line that claims the revision is served by the same path as a POST, through
 * an exchange that turns the HTTP answer (a JSON body, or SSE frames for streams and listen) back into lines. stdio
 * carries no headers, so the ones the ladder compares with the body are taken from the body itself.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { View } from '../../gateway/client-session.js';
import type { Caller } from '../../gateway/types.js';
import type { RpcMessage } from '../../util/jsonrpc.js';
import { META_PROTOCOL_VERSION } from './envelope.js';
import type { ModernMcp } from './handler.js';

/** The part of ServerResponse the 2026-07-28 path writes through, as lines of JSON-RPC. */
class LineExchange extends EventEmitter {
  headersSent = false;
  writableEnded = false;
  private sse = false;
  private buffer = '';

  constructor(private readonly emitLine: (msg: RpcMessage) => void) {
    super();
  }

  writeHead(_status: number, headers?: Record<string, string | number>): this {
    this.headersSent = true;
    this.sse = String(headers?.['content-type'] ?? '').startsWith('text/event-stream');
    return this;
  }

  write(chunk: string): boolean {
    this.buffer += chunk;
    if (this.sse) this.frames();
    return true;
  }

  end(chunk?: string): this {
    if (chunk) this.write(chunk);
    // A JSON body is one message; an SSE stream's last frame was taken as it came. 202 has no body.
    if (!this.sse && this.buffer.trim()) this.emitLine(JSON.parse(this.buffer) as RpcMessage);
    this.buffer = '';
    this.writableEnded = true;
    this.emit('close');
    return this;
  }

  private frames(): void {
    let at: number;
    while ((at = this.buffer.indexOf('\n\n')) >= 0) {
      const event = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 2);
      for (const line of event.split('\n')) {
        // Keep-alive comments and empty priming events carry no message.
        if (line.startsWith('data: ') && line.length > 6) this.emitLine(JSON.parse(line.slice(6)) as RpcMessage);
      }
    }
  }

  /** The process is stopping: what still streams (a listen) ends. */
  close(): void {
    if (!this.writableEnded) this.end();
  }
}

/** Whether a stdio line speaks 2026-07-28: its `_meta` carries the protocol-version claim. */
export function claimsModernLine(msg: RpcMessage): boolean {
  const params = 'params' in msg ? msg.params : undefined;
  const meta = params?._meta;
  return typeof meta === 'object' && meta !== null && META_PROTOCOL_VERSION in meta;
}

export class StdioModern {
  private readonly open = new Set<LineExchange>();

  constructor(private readonly modern: ModernMcp, private readonly caller: Caller, private readonly write: (msg: RpcMessage) => void, private readonly view: View = {}) {}

  serve(msg: RpcMessage): Promise<void> {
    const params = 'params' in msg ? msg.params : undefined;
    const method = 'method' in msg ? msg.method : undefined;
    const name = method === 'tools/call' || method === 'prompts/get' ? params?.name : method === 'resources/read' ? params?.uri : undefined;
    const version = (params?._meta as Record<string, unknown> | undefined)?.[META_PROTOCOL_VERSION];
    const headers: Record<string, string> = {};
    if (method) headers['mcp-method'] = method;
    if (typeof name === 'string') headers['mcp-name'] = name;
    if (typeof version === 'string') headers['mcp-protocol-version'] = version;
    const exchange = new LineExchange(this.write);
    this.open.add(exchange);
    exchange.once('close', () => this.open.delete(exchange));
    // The HTTP path reads only these members of the request and response (headers; writeHead, write, end, close).
    return this.modern.serve({ headers } as unknown as IncomingMessage, exchange as unknown as ServerResponse, msg, this.view, this.caller);
  }

  close(): Promise<void> {
    for (const e of [...this.open]) e.close();
    return this.modern.close();
  }
}

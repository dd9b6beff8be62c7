/** What every upstream connector offers the session layer: raw JSON-RPC messages in and out. */
import type { Step } from '../gateway/types.js';
import type { RpcId, RpcMessage } from '../util/jsonrpc.js';
import type { UpstreamError } from './errors.js';

/** Per-message data that travels with one `send`; each connector uses what its wire can carry and ignores the rest. */
export interface SendOptions {
  /** The upstream request this message is about: the one a cancellation cancels, or the server request a response answers. */
  relatedRequest?: RpcId;
  /** Extra headers for this message (trace context, minted identity): HTTP sends them, stdio carries `traceparent` in `_meta`. */
  headers?: Readonly<Record<string, string>>;
  /** Aborted once nobody waits for the answer any more: a connector stops resuming that request's stream. */
  signal?: AbortSignal;
  /** The gateway step a request serves, for connectors that tie upstream work to it (A2A tasks). */
  step?: Step;
}

export interface UpstreamTransport {
  start(): Promise<void>;
  /** Send one message. For HTTP, messages that arrive on the request's own stream are delivered with `relatedTo` = its id. */
  send(message: RpcMessage, options?: SendOptions): Promise<void>;
  close(): Promise<void>;
  /**
   * Deliver one inbound message; `relatedTo` names the request whose stream carried it, when the transport knows, and
   * `bytes` its size on the wire, when the transport read it as one piece of text.
   */
  onmessage?: (message: RpcMessage, relatedTo?: RpcId, bytes?: number) => void;
  /** The transport ended: `cause` says why, absent when it was closed on purpose. */
  onclose?: (cause?: UpstreamError) => void;
  onerror?: (error: Error) => void;
  /** HTTP transports: the negotiated protocol version goes on every later request (a fact of the session, as in the SDK); undefined: none. */
  setProtocolVersion?(version: string | undefined): void;
  /** The session is initialized: HTTP opens its stream for server-initiated messages (list_changed, resources/updated). */
  openServerStream?(): void;
}

/** Thrown by HTTP transports when the upstream no longer knows our session (404): the session re-initializes. */
export class SessionExpiredError extends Error {
  constructor() {
    super('upstream session expired (HTTP 404)');
    this.name = 'SessionExpiredError';
  }
}

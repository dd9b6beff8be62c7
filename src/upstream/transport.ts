/** What every upstream connector offers the session layer: raw JSON-RPC messages in and out. */
import type { RpcId, RpcMessage } from '../util/jsonrpc.js';
import type { UpstreamError } from './errors.js';

export interface UpstreamTransport {
  start(): Promise<void>;
  /** Send one message. For HTTP, messages that arrive on the request's own stream are delivered with `relatedTo` = its id. */
  send(message: RpcMessage): Promise<void>;
  close(): Promise<void>;
  /**
   * Deliver one inbound message; `relatedTo` names the request whose stream carried it, when the transport knows, and
   * `bytes` its size on the wire, when the transport read it as one piece of text.
   */
  onmessage?: (message: RpcMessage, relatedTo?: RpcId, bytes?: number) => void;
  /** The transport ended: `cause` says why, absent when it was closed on purpose. */
  onclose?: (cause?: UpstreamError) => void;
  onerror?: (error: Error) => void;
  /** HTTP transports: the negotiated protocol version goes on every later request. */
  setProtocolVersion?(version: string): void;
}

/** Thrown by HTTP transports when the upstream no longer knows our session (404): the session re-initializes. */
export class SessionExpiredError extends Error {
  constructor() {
    super('upstream session expired (HTTP 404)');
    this.name = 'SessionExpiredError';
  }
}

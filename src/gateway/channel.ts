/** Where messages to a client go: the stream of the request being answered, or the session's own stream. */
import type { RpcMessage, RpcResponse } from '../util/jsonrpc.js';

/** The reply path of one client request: related messages first, then exactly one final response. */
export interface ReplyChannel {
  related(msg: RpcMessage): void;
  final(msg: RpcResponse): void;
  /** True once the client went away (connection closed); related messages are then routed to the session stream. */
  readonly gone: boolean;
}

/** The session's stream for messages not tied to a request (GET SSE stream, or stdout for stdio). */
export interface SessionStream {
  send(msg: RpcMessage): void;
}

/**
 * The reply path of one 2026-07-28 request: every result says its `resultType` and carries the gateway's
 * `_meta` (server identity, workflow), lists and reads carry cache hints, and log messages reach the client only
 * at the `logLevel` its request asked for.
 */
import type { ReplyChannel } from '../../gateway/channel.js';
import type { ClientSession } from '../../gateway/client-session.js';
import { rank } from '../../gateway/notify.js';
import { errorResponse, isRequest, type RpcMessage, type RpcResponse } from '../../util/jsonrpc.js';
import { HEADER_MISMATCH, META_SERVER_INFO, META_WORKFLOW_ID, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION } from './envelope.js';

/** Results whose caching the revision lets a server describe. */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/**
 * Lists are filtered per caller and the gateway hears of upstream changes only as they happen, so it promises no
 * freshness window: `private`, revalidate every time (decision record 0015).
 */
export const LIST_TTL_MS = 0;

export interface ModernReplyOptions {
  method: string;
  workflowId: string;
  serverInfo: Record<string, unknown>;
  /** The request's `_meta` logLevel; no log messages without one. */
  logLevel?: string;
  /** The per-request session the Step path asks through (server-to-client requests are answered here). */
  session: ClientSession;
  /** Sends an error as plain JSON with an HTTP status, while nothing was streamed yet. */
  rejectWith?: (status: number, body: RpcResponse) => void;
}

/** Errors the revision answers with HTTP 400 (an upstream's -32021 keeps its status through the gateway). */
const HTTP_400_CODES = new Set([HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION]);

export class ModernReply implements ReplyChannel {
  private streamed = false;

  constructor(private readonly inner: ReplyChannel, private readonly opts: ModernReplyOptions) {}

  get gone(): boolean {
    return this.inner.gone;
  }

  related(msg: RpcMessage): void {
    if (isRequest(msg)) {
      // The revision has no server-to-client requests on a response stream: the upstream is told so at once.
      this.opts.session.answer(
        errorResponse(msg.id, -32601, `${msg.method} cannot reach a ${'2026-07-28'} client as a request; the gateway does not bridge it to input_required yet`),
      );
      return;
    }
    if ('method' in msg && msg.method === 'notifications/message') {
      const min = this.opts.logLevel;
      if (min === undefined || rank(msg.params?.level) < rank(min)) return;
    }
    this.streamed = true;
    this.inner.related(msg);
  }

  final(msg: RpcResponse): void {
    const out = decorate(msg, this.opts);
    if (!this.streamed && out.error && HTTP_400_CODES.has(out.error.code) && this.opts.rejectWith && !this.inner.gone) {
      return this.opts.rejectWith(400, out);
    }
    this.inner.final(out);
  }
}

/** The revision's result fields, added where the upstream (or the gateway's own answer) left them out. */
export function decorate(msg: RpcResponse, opts: Pick<ModernReplyOptions, 'method' | 'workflowId' | 'serverInfo'>): RpcResponse {
  if (msg.error) {
    const data = typeof msg.error.data === 'object' && msg.error.data !== null ? msg.error.data : {};
    return { ...msg, error: { ...msg.error, data: { ...data, workflowId: opts.workflowId } } };
  }
  const result = typeof msg.result === 'object' && msg.result !== null ? (msg.result as Record<string, unknown>) : {};
  const meta = typeof result._meta === 'object' && result._meta !== null ? (result._meta as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {
    ...result,
    resultType: result.resultType ?? 'complete',
    _meta: { ...meta, [META_SERVER_INFO]: meta[META_SERVER_INFO] ?? opts.serverInfo, [META_WORKFLOW_ID]: opts.workflowId },
  };
  if (CACHEABLE.has(opts.method)) {
    out.ttlMs = LIST_TTL_MS;
    out.cacheScope = 'private';
  }
  return { ...msg, result: out };
}

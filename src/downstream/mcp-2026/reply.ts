/**
 * The reply path of one 2026-07-28 request: every result says its `resultType` and carries the gateway's
 * `_meta` (server identity, workflow), lists and reads carry cache hints, log messages reach the client only at
 * the `logLevel` its request asked for, and an upstream's sampling, elicitation or roots request becomes an
 * `input_required` result (the call's later answers go to the retry's stream).
 */
import type { ReplyChannel } from '../../gateway/channel.js';
import type { ClientSession } from '../../gateway/client-session.js';
import { rank } from '../../gateway/notify.js';
import { errorResponse, isRequest, type RpcId, type RpcMessage, type RpcRequest, type RpcResponse } from '../../util/jsonrpc.js';
import { INPUT_RELAYED, isInputRound } from '../../upstream/modern.js';
import { REQUIRED_CAPABILITY, type Resumable } from './bridge.js';
import { HEADER_MISMATCH, META_SERVER_INFO, META_WORKFLOW_ID, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION } from './envelope.js';

/** Results whose caching the revision lets a server describe. */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/**
 * Lists are filtered per caller and the gateway hears of upstream changes only as they happen, so it promises no
 * freshness window: `private`, revalidate every time (decision record 0024).
 */
export const LIST_TTL_MS = 0;

/** Errors the revision answers with HTTP 400 (an upstream's -32021 keeps its status through the gateway). */
const HTTP_400_CODES = new Set([HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION]);

export interface ModernReplyOptions {
  method: string;
  workflowId: string;
  serverInfo: Record<string, unknown>;
  /** The request's `_meta` logLevel; no log messages without one. */
  logLevel?: string;
  /** The per-request session the Step path asks through (server-to-client requests are answered here). */
  session: ClientSession;
  /** The client request being answered. */
  requestId: RpcId;
  /** Sends an error as plain JSON with an HTTP status, while nothing was streamed yet. */
  rejectWith?: (status: number, body: RpcResponse) => void;
  /** Holds an upstream's request to the client and returns the input_required result for it (absent: not bridged). */
  hold?: (request: RpcRequest, reply: ModernReply) => Record<string, unknown>;
  /** Ends the call upstream. */
  abort?: (why: string) => void;
  /** Wraps an upstream's own requestState in gateway-minted, authenticated state (absent: passed as it is). */
  wrapState?: (state: string) => string;
}

export class ModernReply implements ReplyChannel, Resumable {
  private streamed = false;
  /** This response already went out (a result, input_required or an error): later answers wait for a retry. */
  answered = false;
  private requestId: RpcId;

  constructor(private inner: ReplyChannel, private readonly opts: ModernReplyOptions) {
    this.requestId = opts.requestId;
  }

  get gone(): boolean {
    return this.answered || this.inner.gone;
  }

  /** The client retried with the input the call waited for: its stream takes the call's next answer. */
  retarget(requestId: RpcId, send: (status: number, body: RpcResponse) => void, inner: ReplyChannel): void {
    this.requestId = requestId;
    this.opts.rejectWith = send;
    this.inner = inner;
    this.streamed = false;
    this.answered = false;
  }

  related(msg: RpcMessage): void {
    if (isRequest(msg)) return this.onServerRequest(msg);
    if (this.answered) return;
    if ('method' in msg && msg.method === 'notifications/message') {
      const min = this.opts.logLevel;
      if (min === undefined || rank(msg.params?.level) < rank(min)) return;
    }
    this.streamed = true;
    this.inner.related(msg);
  }

  private onServerRequest(msg: RpcRequest): void {
    // A modern upstream's input_required: this client takes it as it is, so the upstream session relays the result.
    if (isInputRound(msg.params)) return void this.opts.session.answer(errorResponse(msg.id, -32603, 'relayed to a 2026-07-28 client', { reason: INPUT_RELAYED }));
    const needed = REQUIRED_CAPABILITY[msg.method];
    const refuseUpstream = (why: string): void => void this.opts.session.answer(errorResponse(msg.id, -32601, why));
    if (!needed || !this.opts.hold || this.answered) {
      // The revision has no server-to-client requests on a response stream: the upstream is told so at once.
      return refuseUpstream(`${msg.method} cannot reach a 2026-07-28 client during this call`);
    }
    if (!(needed in (this.opts.session.capabilities ?? {}))) {
      refuseUpstream(`the client did not declare the ${needed} capability`);
      this.final({
        jsonrpc: '2.0',
        id: this.requestId,
        error: { code: MISSING_REQUIRED_CLIENT_CAPABILITY, message: `This call needs the ${needed} client capability (the server asked ${msg.method}); declare it in _meta io.modelcontextprotocol/clientCapabilities.`, data: { requiredCapabilities: { [needed]: {} } } },
      });
      this.opts.abort?.(`client lacks ${needed}`);
      return;
    }
    const result = this.opts.hold(msg, this);
    this.finish({ jsonrpc: '2.0', id: this.requestId, result }, true);
  }

  final(msg: RpcResponse): void {
    this.finish(msg, false);
  }

  /** `minted`: the gateway's own input_required (its state is already the gateway's); else an upstream's state is wrapped. */
  private finish(msg: RpcResponse, minted: boolean): void {
    if (this.answered) return;
    this.answered = true;
    const out = decorate({ ...msg, id: this.requestId }, this.opts);
    const result = out.result as { resultType?: unknown; requestState?: unknown } | undefined;
    if (!minted && this.opts.wrapState && result?.resultType === 'input_required' && typeof result.requestState === 'string') {
      out.result = { ...result, requestState: this.opts.wrapState(result.requestState) };
    }
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
  if (CACHEABLE.has(opts.method) && out.resultType === 'complete') {
    out.ttlMs = LIST_TTL_MS;
    out.cacheScope = 'private';
  }
  return { ...msg, result: out };
}

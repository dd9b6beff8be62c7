/** Method routing for one downstream session: lists, the Step path for calls, and the small relays. */
import { BadCursorError, type ListMethod } from '../catalog/lists.js';
import {
  errorResponse,
  isNotification,
  isResponse,
  resultResponse,
  RpcErrorCode,
  type Params,
  type RpcMessage,
  type RpcRequest,
} from '../util/jsonrpc.js';
import type { ReplyChannel } from './channel.js';
import type { ClientSession } from './client-session.js';
import type { Gateway } from './gateway.js';
import { complete, subscribe } from './relays.js';
import { listKindOf, markListed } from './notify.js';
import { runStep } from './steps.js';
import { clip } from '../util/shown.js';

export async function dispatch(gw: Gateway, cs: ClientSession, msg: RpcMessage, reply: ReplyChannel | undefined): Promise<void> {
  cs.lastSeen = Date.now();
  if (isResponse(msg)) {
    if (!cs.answer(msg)) gw.log.debug({ session: cs.id, id: msg.id }, 'response to no pending request; dropped');
    return;
  }
  if (isNotification(msg)) return onNotification(gw, cs, msg.method, msg.params);
  if (!reply) return;
  const req = msg as RpcRequest;
  try {
    await onRequest(gw, cs, req, reply);
  } catch (err) {
    gw.log.error({ session: cs.id, method: req.method, err: (err as Error).stack }, 'request failed inside the gateway');
    reply.final(errorResponse(req.id, RpcErrorCode.InternalError, 'Internal gateway error; the gateway log has the details.'));
  }
}

/** Not async itself: a call's promise is runStep's own, with no layer added per request. */
function onRequest(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): void | Promise<void> {
  switch (req.method) {
    case 'tools/call':
    case 'prompts/get':
    case 'resources/read':
      return runStep(gw, cs, req, reply);
    case 'tools/list':
    case 'prompts/list':
    case 'resources/list':
    case 'resources/templates/list':
      return list(gw, cs, req, reply);
    case 'ping':
      gw.countCall?.(cs.caller.agentId, req.method);
      return reply.final(resultResponse(req.id, {}));
    case 'initialize':
      return reply.final(errorResponse(req.id, RpcErrorCode.InvalidRequest, 'Session already initialized; start a new session to initialize again.'));
    case 'logging/setLevel':
      return gw.setLogLevel(cs, String(req.params?.level ?? 'info')).then(() => reply.final(resultResponse(req.id, {})));
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return subscribe(gw, cs, req, reply);
    case 'completion/complete':
      return complete(gw, cs, req, reply);
    default:
      return reply.final(errorResponse(req.id, RpcErrorCode.MethodNotFound, `Method not found: ${clip(req.method)}`));
  }
}

function onNotification(gw: Gateway, cs: ClientSession, method: string, params: Params | undefined): void {
  if (method === 'notifications/cancelled') {
    const id = params?.requestId;
    if (typeof id === 'string' || typeof id === 'number') cs.inFlight.get(id)?.abort(String(params?.reason ?? 'cancelled by client'));
    return;
  }
  if (method === 'notifications/roots/list_changed') {
    for (const name of gw.serversInView(cs)) gw.pools.get(name)?.peek(cs.id)?.notify(method, params);
  }
}

async function list(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const method = req.method as ListMethod;
  gw.countCall?.(cs.caller.agentId, method);
  const cursor = typeof req.params?.cursor === 'string' ? req.params.cursor : undefined;
  const view = gw.viewOf(cs);
  let result;
  try {
    result = await gw.catalog.list(method, view, cursor);
  } catch (err) {
    if (err instanceof BadCursorError) return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, err.message));
    throw err;
  }
  const kind = listKindOf(method)!;
  markListed(cs, kind);
  for (const server of view.servers) {
    const pool = gw.pools.get(server);
    const live = pool?.peek(cs.id);
    if (live) markListed(live, kind);
    else if (pool?.isConnecting(cs.id)) gw.announceWhenReady(cs, server, kind);
  }
  reply.final(resultResponse(req.id, result));
}

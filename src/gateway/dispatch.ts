/** Method routing for one downstream session: lists, the Step path for calls, and the small relays. */
import { parseQualifiedUri } from '../catalog/naming.js';
import { BadCursorError, fetchMergedPage, LIST_KEY, type Item, type ListMethod } from '../catalog/lists.js';
import {
  errorResponse,
  isNotification,
  isResponse,
  refusalResponse,
  resultResponse,
  RpcErrorCode,
  type Params,
  type RpcMessage,
  type RpcRequest,
} from '../util/jsonrpc.js';
import type { ReplyChannel } from './channel.js';
import type { ClientSession } from './client-session.js';
import type { Gateway } from './gateway.js';
import { listKindOf, markListed } from './notify.js';
import { runStep } from './steps.js';

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
    reply.final(errorResponse(req.id, RpcErrorCode.InternalError, `Internal gateway error: ${(err as Error).message}`));
  }
}

async function onRequest(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
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
      await gw.setLogLevel(cs, String(req.params?.level ?? 'info'));
      return reply.final(resultResponse(req.id, {}));
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return subscribe(gw, cs, req, reply);
    case 'completion/complete':
      return complete(gw, cs, req, reply);
    default:
      return reply.final(errorResponse(req.id, RpcErrorCode.MethodNotFound, `Method not found: ${req.method}`));
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
  const servers = gw.serversInView(cs);
  const sources = servers.map((server) => ({ server, session: () => gw.upstreamFor(cs, server) }));
  let page;
  try {
    page = await fetchMergedPage(method, sources, cursor, gw.config.listTimeoutMs, gw.log);
  } catch (err) {
    if (err instanceof BadCursorError) return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, err.message));
    throw err;
  }
  const kind = listKindOf(method)!;
  markListed(cs, kind);
  for (const server of servers) {
    const pool = gw.pools.get(server);
    const live = pool?.peek(cs.id);
    if (live) markListed(live, kind);
    else if (pool?.isConnecting(cs.id)) gw.announceWhenReady(cs, server, kind);
  }
  const access = gw.access(cs);
  const single = cs.view.single !== undefined;
  const out: Item[] = [];
  for (const { server, item } of page.items) {
    switch (method) {
      case 'tools/list': {
        const name = String(item.name);
        if (!gw.toolAllowedByManifest(server, name)) continue;
        const exposed = gw.names.expose(server, name);
        if (!access.tool(exposed)) continue;
        out.push(single ? item : { ...item, name: exposed });
        break;
      }
      case 'prompts/list': {
        const exposed = gw.names.expose(server, String(item.name));
        if (!access.prompt(exposed)) continue;
        out.push(single ? item : { ...item, name: exposed });
        break;
      }
      case 'resources/list': {
        const uri = String(item.uri);
        if (!access.resource(server, uri)) continue;
        const exposed = single ? uri : gw.exposedUri(server, uri);
        if (exposed === uri) gw.resourceRoutes.set(uri, server);
        out.push(exposed === uri ? item : { ...item, uri: exposed });
        break;
      }
      case 'resources/templates/list': {
        const t = String(item.uriTemplate);
        if (!access.resource(server, t)) continue;
        gw.templateRoutes.set(t, server);
        out.push(item);
        break;
      }
    }
  }
  const result: Record<string, unknown> = { [LIST_KEY[method]]: out };
  if (page.nextCursor) result.nextCursor = page.nextCursor;
  reply.final(resultResponse(req.id, result));
}

/** The server and upstream URI behind an exposed resource URI (plain, or qualified when two servers share it). */
export function resolveResource(gw: Gateway, cs: ClientSession, exposed: string): { server: string; uri: string } | undefined {
  const q = cs.view.single ? undefined : parseQualifiedUri(exposed);
  if (q) return gw.pools.has(q.server) ? q : undefined;
  const server = routeResource(gw, cs, exposed);
  return server ? { server, uri: exposed } : undefined;
}

/** Which server serves a resource URI: learned from lists, then templates, then the only server in view. */
export function routeResource(gw: Gateway, cs: ClientSession, uri: string): string | undefined {
  if (cs.view.single) return cs.view.single;
  const known = gw.resourceRoutes.get(uri);
  if (known && gw.pools.has(known)) return known;
  let best: { server: string; len: number } | undefined;
  for (const [template, server] of gw.templateRoutes) {
    const prefix = template.split('{')[0]!;
    if (prefix && uri.startsWith(prefix) && gw.pools.has(server) && (!best || prefix.length > best.len)) best = { server, len: prefix.length };
  }
  if (best) return best.server;
  const servers = gw.serversInView(cs);
  return servers.length === 1 ? servers[0] : undefined;
}

async function subscribe(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const uri = req.params?.uri;
  if (typeof uri !== 'string') return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, 'params.uri must be a string'));
  const target = resolveResource(gw, cs, uri);
  const server = target?.server;
  if (!target || !server || !gw.access(cs).resource(server, target.uri)) return reply.final(errorResponse(req.id, -32002, `Resource not found: ${uri}`));
  if (req.method === 'resources/unsubscribe' && gw.pools.get(server)?.shared) {
    // One upstream subscription serves every client of a shared server: keep it while another client still wants it.
    const stillWanted = [...gw.sessions.values()].some((o) => o !== cs && o.subscriptions.has(uri) && routeResource(gw, o, uri) === server);
    if (stillWanted) {
      cs.subscriptions.delete(uri);
      return reply.final(resultResponse(req.id, {}));
    }
  }
  let upstream;
  try {
    upstream = await gw.upstreamFor(cs, server);
  } catch (err) {
    return reply.final(refusalResponse(req.id, { reason: 'upstream_unavailable', message: `Upstream '${server}' is unavailable: ${(err as Error).message}` }, cs.workflowId));
  }
  const res = await upstream.request(req.method, target.uri === uri ? req.params : { ...req.params, uri: target.uri });
  if (!res.error) {
    if (req.method === 'resources/subscribe') cs.subscriptions.add(uri);
    else cs.subscriptions.delete(uri);
  }
  reply.final({ ...res, id: req.id });
}

async function complete(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const ref = (req.params?.ref ?? {}) as { type?: string; name?: string; uri?: string };
  let server: string | undefined;
  let params = req.params;
  if (ref.type === 'ref/prompt' && typeof ref.name === 'string') {
    if (cs.view.single) server = cs.view.single;
    else {
      const q = gw.names.resolve(ref.name);
      if (q && gw.pools.has(q.server) && gw.access(cs).prompt(ref.name)) {
        server = q.server;
        params = { ...req.params, ref: { ...ref, name: q.name } };
      }
    }
  } else if (ref.type === 'ref/resource' && typeof ref.uri === 'string') {
    server = cs.view.single ?? gw.templateRoutes.get(ref.uri) ?? routeResource(gw, cs, ref.uri);
  }
  if (!server) return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, 'Unknown completion reference'));
  try {
    const upstream = await gw.upstreamFor(cs, server);
    if (!upstream.serverCapabilities.completions) return reply.final(resultResponse(req.id, { completion: { values: [], hasMore: false } }));
    const res = await upstream.request('completion/complete', params);
    reply.final({ ...res, id: req.id });
  } catch (err) {
    reply.final(refusalResponse(req.id, { reason: 'upstream_unavailable', message: `Upstream '${server}' is unavailable: ${(err as Error).message}` }, cs.workflowId));
  }
}

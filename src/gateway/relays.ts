/**
 * Resource subscriptions and completions: relayed to the one upstream behind the reference, under the same
 * visibility as the resource or prompt they name (a hidden one is answered exactly like an unknown one).
 */
import { refusalResponse } from '../downstream/render/mcp.js';
import { errorResponse, resultResponse, RESOURCE_NOT_FOUND, RpcErrorCode, type RpcRequest } from '../util/jsonrpc.js';
import { parseQualifiedUri } from '../catalog/naming.js';
import type { ReplyChannel } from './channel.js';
import type { ClientSession } from './client-session.js';
import type { Gateway } from './gateway.js';
import { resolvePrompt, resolveResource } from './routing.js';
import { withWorkflow } from './steps.js';
import { asUpstreamError, unavailable } from '../upstream/errors.js';
import { clip } from '../util/shown.js';

export async function subscribe(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const uri = req.params?.uri;
  if (typeof uri !== 'string') return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, 'params.uri must be a string'));
  const target = await resolveResource(gw, cs, uri);
  if (!target || !gw.access(cs).resource(target.server, target.uri)) return reply.final(errorResponse(req.id, RESOURCE_NOT_FOUND, `Resource not found: ${clip(uri)}`, { uri }));
  const server = target.server;
  if (req.method === 'resources/unsubscribe' && gw.pools.get(server)?.shared) {
    // One upstream subscription serves every client of a shared server: keep it while another client still wants it.
    const stillWanted = [...gw.sessions.values()].some((o) => o !== cs && [...o.subscriptions].some(([u, s]) => s === server && (parseQualifiedUri(u)?.uri ?? u) === target.uri));
    if (stillWanted) {
      cs.subscriptions.delete(uri);
      return reply.final(resultResponse(req.id, {}));
    }
  }
  let upstream;
  try {
    upstream = await gw.upstreamFor(cs, server);
  } catch (err) {
    return reply.final(withWorkflow(unavailable(req.id, asUpstreamError(server, err)), cs.workflowId));
  }
  const res = await upstream.request(req.method, target.uri === uri ? req.params : { ...req.params, uri: target.uri });
  if (!res.error) {
    if (req.method === 'resources/subscribe') cs.subscriptions.set(uri, server);
    else cs.subscriptions.delete(uri);
  }
  reply.final({ ...res, id: req.id });
}

export async function complete(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const ref = (req.params?.ref ?? {}) as { type?: string; name?: string; uri?: string };
  const unknown = (what: string) =>
    reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, `Unknown completion reference: ${what}; use a name or URI from prompts/list, resources/list or resources/templates/list.`));
  let server: string;
  let params = req.params;
  try {
    if (ref.type === 'ref/prompt' && typeof ref.name === 'string') {
      const p = await resolvePrompt(gw, cs, ref.name);
      if (!p || !gw.access(cs).prompt(p.exposed)) return unknown(`prompt ${ref.name}`);
      server = p.server;
      if (p.name !== ref.name) params = { ...req.params, ref: { ...ref, name: p.name } };
    } else if (ref.type === 'ref/resource' && typeof ref.uri === 'string') {
      const r = await resolveResource(gw, cs, ref.uri);
      if (!r || !gw.access(cs).resource(r.server, r.uri)) return unknown(`resource ${ref.uri}`);
      server = r.server;
      if (r.uri !== ref.uri) params = { ...req.params, ref: { ...ref, uri: r.uri } };
    } else {
      return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, 'params.ref must be {type: "ref/prompt", name} or {type: "ref/resource", uri}.'));
    }
  } catch (err) {
    return reply.final(refusalResponse(req.id, { reason: 'upstream_unavailable', message: `An upstream could not be reached to resolve the completion reference: ${clip((err as Error).message)}. Retry shortly.` }, cs.workflowId));
  }
  try {
    const upstream = await gw.upstreamFor(cs, server);
    if (!upstream.serverCapabilities.completions) return reply.final(resultResponse(req.id, { completion: { values: [], hasMore: false } }));
    const res = await upstream.request('completion/complete', params);
    reply.final({ ...res, id: req.id });
  } catch (err) {
    reply.final(withWorkflow(unavailable(req.id, asUpstreamError(server, err)), cs.workflowId));
  }
}

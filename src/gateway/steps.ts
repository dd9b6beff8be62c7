/**
 * The Step path: tools/call, prompts/get and resources/read become Steps, walk the guard chain, are routed
 * upstream with the client's progress, cancellation and server-to-client requests relayed, and are recorded.
 */
import {
  errorResponse,
  refusalResponse,
  RESOURCE_NOT_FOUND,
  RpcErrorCode,
  type Params,
  type RpcRequest,
  type RpcResponse,
} from '../util/jsonrpc.js';
import { mayBeShortened } from '../catalog/naming.js';
import { unavailable, type CallHooks, type UpstreamSession } from '../upstream/session.js';
import type { ReplyChannel } from './channel.js';
import type { ClientSession } from './client-session.js';
import { resolveResource } from './dispatch.js';
import { backoffMs, shouldRetry, sleep } from '../limits/retry.js';
import type { Gateway } from './gateway.js';
import type { GuardContext, Refusal, Step, StepKind, StepOutcome } from './types.js';

interface Target {
  server: string;
  /** Upstream-side name (tool or prompt) or URI. */
  target: string;
  exposed: string;
}

function unknownName(req: RpcRequest, kind: StepKind, name: string): RpcResponse {
  if (kind === 'resources/read') return errorResponse(req.id, RESOURCE_NOT_FOUND, `Resource not found: ${name}`, { uri: name });
  return errorResponse(req.id, RpcErrorCode.InvalidParams, kind === 'tools/call' ? `Unknown tool: ${name}` : `Unknown prompt: ${name}`);
}

function resolveTarget(gw: Gateway, cs: ClientSession, kind: StepKind, params: Params | undefined): Target | undefined {
  if (kind === 'resources/read') {
    const uri = params?.uri;
    if (typeof uri !== 'string') return undefined;
    const r = resolveResource(gw, cs, uri);
    return r ? { server: r.server, target: r.uri, exposed: uri } : undefined;
  }
  const name = params?.name;
  if (typeof name !== 'string') return undefined;
  if (cs.view.single) {
    const server = cs.view.single;
    return gw.pools.has(server) ? { server, target: name, exposed: gw.names.expose(server, name) } : undefined;
  }
  const q = gw.names.resolve(name);
  if (!q || !gw.pools.has(q.server)) return undefined;
  return { server: q.server, target: q.name, exposed: name };
}

export async function runStep(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const kind = req.method as StepKind;
  const params = req.params;
  const displayName = String(kind === 'resources/read' ? params?.uri : params?.name);
  if (kind !== 'resources/read' && typeof params?.name !== 'string') {
    return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, `${kind} needs params.name (a string)`));
  }
  const t = resolveTarget(gw, cs, kind, params);
  if (!t || (kind === 'tools/call' && !gw.toolAllowedByManifest(t.server, t.target) && !mayBeShortened(t.target))) return reply.final(unknownName(req, kind, displayName));

  const step: Step = {
    kind,
    caller: cs.caller,
    workflowId: cs.workflowId,
    stepNo: 0, // numbered once it is allowed or recorded, so unknown names leave no holes
    server: t.server,
    target: t.target,
    exposedName: t.exposed,
    args: kind === 'resources/read' ? undefined : (params?.arguments as Record<string, unknown> | undefined),
    startedAt: Date.now(),
    traceparent: cs.traceparent,
  };

  // Names are checked against a session that already listed them before any guard spends budget on them.
  const live = gw.pools.get(t.server)?.peek(cs.id);
  let known = false;
  if (kind === 'tools/call' && live) {
    if (!(await toolExists(gw, cs, t, step, live))) return reply.final(unknownName(req, kind, displayName));
    known = true;
  }

  const ctx: GuardContext = {
    clientCapabilities: cs.capabilities,
    askClient: (method, p) => askOnReply(cs, reply, method, p),
  };
  let refusal = gw.chain.run(step, ctx);
  if (refusal instanceof Promise) refusal = await refusal;
  if (refusal) return refuse(gw, cs, req, reply, step, refusal);

  const open = gw.breakers?.check(t.server);
  if (open) return refuse(gw, cs, req, reply, step, open);
  let upstream: UpstreamSession;
  try {
    upstream = live?.state === 'ready' ? live : await gw.upstreamFor(cs, t.server);
  } catch (err) {
    gw.breakers?.onFailure(t.server);
    const res = unavailable(req.id, t.server, (err as Error).message);
    const done = finish(gw, step, { outcome: 'error', reason: 'upstream_unavailable', durationMs: Date.now() - step.startedAt });
    if (done) await done;
    return reply.final(withWorkflow(res, cs.workflowId));
  }
  if (kind === 'tools/call' && !known && !(await toolExists(gw, cs, t, step, upstream))) return reply.final(unknownName(req, kind, displayName));
  step.stepNo = gw.workflows.nextStep(cs.workflowId);

  const headers = upstreamHeaders(gw, cs, upstream);
  const controller = new AbortController();
  cs.inFlight.set(req.id, controller);
  const hooks: CallHooks = {
    signal: controller.signal,
    onNotification: (n) => {
      if (!gw.admitsLog(cs, upstream, n)) return;
      if (reply.gone) cs.push(n);
      else reply.related(n);
    },
    onServerRequest: (r) => askOnReply(cs, reply, r.method, r.params).then((result) => ({ jsonrpc: '2.0', id: r.id, result }), (e: Error & { rpc?: RpcResponse }) => e.rpc ?? errorResponse(r.id, -32603, e.message)),
    headers: headers instanceof Promise ? await headers : headers,
    owner: cs.id,
    step,
  };
  const readsResource = kind === 'resources/read';
  let upstreamParams = t.target === (readsResource ? params?.uri : params?.name) ? params : readsResource ? { ...params, uri: t.target } : { ...params, name: t.target };
  // Trace context crosses stdio in _meta (HTTP upstreams get the traceparent header instead).
  if (cs.traceparent && upstream.manifest.transport === 'stdio') {
    upstreamParams = { ...upstreamParams, _meta: { ...(upstreamParams?._meta as object), traceparent: cs.traceparent } };
  }
  let res = await upstream.request(kind, upstreamParams, hooks);
  // Only tools that declare themselves safe to repeat are retried, and only on transport failures.
  for (let attempt = 1; isTransportFailure(res) && !controller.signal.aborted; attempt++) {
    gw.breakers?.onFailure(t.server);
    if (!shouldRetry(step.annotations, attempt)) break;
    await sleep(backoffMs(attempt), controller.signal).catch(() => {});
    if (controller.signal.aborted) break;
    try {
      upstream = await gw.upstreamFor(cs, t.server);
    } catch {
      continue;
    }
    res = await upstream.request(kind, upstreamParams, hooks);
  }
  if (!isTransportFailure(res)) gw.breakers?.onSuccess(t.server);
  cs.inFlight.delete(req.id);
  const errReason = (res.error?.data as { reason?: string } | undefined)?.reason;
  const isError = res.error !== undefined || (res.result as { isError?: boolean } | undefined)?.isError === true;
  const outcome: StepOutcome = { outcome: isError ? 'error' : 'ok', reason: errReason, durationMs: Date.now() - step.startedAt };
  const done = finish(gw, step, outcome);
  if (done) await done;
  reply.final(errReason ? withWorkflow({ ...res, id: req.id }, cs.workflowId) : { ...res, id: req.id });
}

/** Per-request headers for HTTP upstreams: trace context, and a minted identity token where the manifest asks for one. */
function upstreamHeaders(gw: Gateway, cs: ClientSession, upstream: UpstreamSession): Record<string, string> | undefined | Promise<Record<string, string>> {
  const wantsIdentity = upstream.manifest.identity === 'jwt' && gw.mintUpstreamToken !== undefined;
  if (!cs.traceparent && !wantsIdentity) return undefined; // the common case stays synchronous
  const headers: Record<string, string> = {};
  if (cs.traceparent) headers.traceparent = cs.traceparent;
  if (!wantsIdentity) return headers;
  const h = gw.mintUpstreamToken!(cs.caller, upstream.name, cs.workflowId, cs.id);
  if (typeof h === 'string') return { ...headers, authorization: h };
  return h.then((authorization) => ({ ...headers, authorization }));
}

/** Whether the upstream has the tool (resolving shortened names nobody listed since start); fills annotations. */
async function toolExists(gw: Gateway, cs: ClientSession, t: Target, step: Step, upstream: UpstreamSession): Promise<boolean> {
  let tools;
  try {
    tools = await gw.toolsOf(upstream);
  } catch {
    return gw.toolAllowedByManifest(t.server, t.target); // listing failed: let the upstream judge the name itself
  }
  let def = tools.get(t.target);
  if (!def && !cs.view.single) {
    // A shortened name nobody has listed since this gateway started (names are deterministic, clients keep them).
    for (const [name, item] of tools) {
      if (gw.names.expose(t.server, name) !== t.exposed) continue;
      t.target = step.target = name;
      def = item;
      break;
    }
  }
  if (!def || !gw.toolAllowedByManifest(t.server, t.target)) return false;
  if (def.annotations) step.annotations = def.annotations as Record<string, unknown>;
  return true;
}

function isTransportFailure(res: RpcResponse): boolean {
  const reason = (res.error?.data as { reason?: string } | undefined)?.reason;
  return reason === 'upstream_unavailable' || reason === 'upstream_timeout';
}

function withWorkflow(res: RpcResponse, workflowId: string): RpcResponse {
  if (!res.error) return res;
  return { ...res, error: { ...res.error, data: { ...(res.error.data as object), workflowId } } };
}

/** Ask the client on the call's own stream (the POST that caused it), falling back to the session stream. */
async function askOnReply(cs: ClientSession, reply: ReplyChannel, method: string, params: Params | undefined): Promise<Record<string, unknown>> {
  const res = await cs.ask({ method, params }, (msg) => (reply.gone ? cs.push(msg) : reply.related(msg)));
  if (res.error) throw Object.assign(new Error(res.error.message), { rpc: res });
  return (res.result ?? {}) as Record<string, unknown>;
}

async function refuse(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel, step: Step, refusal: Refusal): Promise<void> {
  // A hidden name is answered exactly like an unknown one and, like one, is not a step.
  if (refusal.asUnknown) {
    gw.log.info({ workflowId: step.workflowId, agent: step.caller.agentId, tool: step.exposedName }, 'call to a name hidden by policy answered as unknown');
    return reply.final(unknownName(req, step.kind, step.kind === 'resources/read' ? step.target : String(req.params?.name)));
  }
  const done = finish(gw, step, { outcome: 'refused', reason: refusal.reason, durationMs: Date.now() - step.startedAt });
  if (done) await done;
  if (refusal.asUnknown) return reply.final(unknownName(req, step.kind, step.kind === 'resources/read' ? step.target : String(req.params?.name)));
  reply.final(refusalResponse(req.id, refusal, cs.workflowId));
}

/** Hand the finished step to every sink; returns a promise only when a sink (strict audit) must be awaited. */
function finish(gw: Gateway, step: Step, outcome: StepOutcome): Promise<unknown> | undefined {
  if (step.stepNo === 0) step.stepNo = gw.workflows.nextStep(step.workflowId);
  let wait: Promise<unknown>[] | undefined;
  for (const sink of gw.sinks) {
    const r = sink.record(step, outcome);
    if (r instanceof Promise) (wait ??= []).push(r);
  }
  return wait ? Promise.all(wait) : undefined;
}

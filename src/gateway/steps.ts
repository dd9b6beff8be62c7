/**
 * The Step path: tools/call, prompts/get and resources/read become Steps, walk the guard chain, are routed
 * upstream with the client's progress, cancellation and server-to-client requests relayed, and are recorded.
 */
import {
  errorResponse,
  RESOURCE_NOT_FOUND,
  RpcErrorCode,
  type Params,
  type RpcRequest,
  type RpcResponse,
} from '../util/jsonrpc.js';
import { mayBeShortened, qualifyUri } from '../catalog/naming.js';
import { unavailable, type CallHooks, type UpstreamSession } from '../upstream/session.js';
import { asUpstreamError } from '../upstream/errors.js';
import { clip } from '../util/shown.js';
import type { ReplyChannel } from './channel.js';
import type { ClientSession } from './client-session.js';
import { resolveName, resolveResource } from './routing.js';
import { shouldRetry } from '../limits/retry.js';
import { mcpRefusals } from '../downstream/render/mcp.js';
import type { Gateway } from './gateway.js';
import { mcpHumanAsker } from './ask-human.js';
import { record, runPipeline, type Routed, type StepPlan, type Unrouted } from './pipeline.js';
import { LazyAbort } from './cancel.js';
import type { GuardContext, HumanAnswer, HumanQuestion, Step, StepKind } from './types.js';
import type { Item } from '../catalog/lists.js';

interface Target {
  server: string;
  /** Upstream-side name (tool or prompt) or URI. */
  target: string;
  exposed: string;
}

function unknownName(req: RpcRequest, kind: StepKind, name: string): RpcResponse {
  const shown = clip(name);
  if (kind === 'resources/read') return errorResponse(req.id, RESOURCE_NOT_FOUND, `Resource not found: ${shown}`, { uri: shown });
  return errorResponse(req.id, RpcErrorCode.InvalidParams, kind === 'tools/call' ? `Unknown tool: ${shown}` : `Unknown prompt: ${shown}`);
}

/** What a bad `arguments` value is, for the error that refuses it. */
function badArguments(args: unknown): string | undefined {
  if (args === undefined || (typeof args === 'object' && args !== null && !Array.isArray(args))) return undefined;
  return args === null ? 'null' : Array.isArray(args) ? 'an array' : `a ${typeof args}`;
}

async function resourceTarget(gw: Gateway, cs: ClientSession, params: Params | undefined): Promise<Target | undefined> {
  const uri = params?.uri;
  if (typeof uri !== 'string') return undefined;
  const r = await resolveResource(gw, cs, uri);
  // One identity per resource, whichever spelling the client used (loop detection and approvals key on it).
  return r ? { server: r.server, target: r.uri, exposed: qualifyUri(r.server, r.uri) } : undefined;
}

/** A tool or prompt routes by its name alone, at once: no list is needed to know where it goes. */
function nameTarget(gw: Gateway, cs: ClientSession, params: Params | undefined): Target | undefined {
  const name = params?.name;
  if (typeof name !== 'string') return undefined;
  const q = resolveName(gw, cs, name);
  return q && gw.pools.has(q.server) ? { server: q.server, target: q.name, exposed: q.exposed } : undefined;
}

export async function runStep(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel): Promise<void> {
  const kind = req.method as StepKind;
  const params = req.params;
  const displayName = String(kind === 'resources/read' ? params?.uri : params?.name);
  if (kind === 'resources/read' ? typeof params?.uri !== 'string' : typeof params?.name !== 'string') {
    return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, `${kind} needs ${kind === 'resources/read' ? 'params.uri' : 'params.name'} (a string).`));
  }
  if (kind === 'resources/read' && typeof params?.uri !== 'string') {
    return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, 'resources/read needs params.uri (a string)'));
  }
  const bad = kind === 'resources/read' ? undefined : badArguments(params?.arguments);
  if (bad) return reply.final(errorResponse(req.id, RpcErrorCode.InvalidParams, `${kind} params.arguments must be an object of named arguments, not ${bad}.`));
  const t = kind === 'resources/read' ? await resourceTarget(gw, cs, params) : nameTarget(gw, cs, params);
  if (!t && kind === 'resources/read') return unroutedRead(gw, cs, req, reply, displayName);
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
    unverified: kind !== 'resources/read',
  };

  // Names are checked against the upstream's own list before any guard, metric or audit row sees them; only an
  // upstream that cannot be reached (or whose circuit is open) leaves the name to be judged after the guards.
  let live = gw.pools.get(t.server)?.peek(cs.id);
  let connectError: Error | undefined;
  if (!live && kind !== 'resources/read' && gw.breakers?.get(t.server).state !== 'open') {
    live = await gw.upstreamFor(cs, t.server).catch((err: Error) => void (connectError = err));
  }
  if (kind !== 'resources/read' && live) {
    const exists = nameExists(gw, cs, t, step, live);
    if (!(exists instanceof Promise ? await exists : exists)) return reply.final(unknownName(req, kind, displayName));
  }

  // Registered for notifications/cancelled while a human decides, and again once the call is forwarded.
  const controller = new LazyAbort();
  const call = new McpCall(gw, cs, req, reply, controller, step, t.server);
  // A name the upstream could not confirm before the checks is confirmed before anything is spent on it. On the
  // common path (name confirmed, upstream ready) nothing waits between the last check and the commits.
  let early: UpstreamSession | undefined = live?.state === 'ready' ? live : undefined;
  const confirmEarly = kind !== 'resources/read' && step.unverified === true && !connectError && gw.breakers?.get(t.server).state !== 'open';
  call.confirm = confirmEarly
    ? async (): Promise<boolean> => {
        try {
          early ??= await gw.upstreamFor(cs, t.server);
        } catch (err) {
          connectError = err as Error;
        }
        return !early || nameExists(gw, cs, t, step, early);
      }
    : undefined;

  const readsResource = kind === 'resources/read';
  let hooks: CallHooks | undefined;
  let upstreamParams: Params | undefined;
  // The session of the attempt under way: a retry may reconnect, and log notifications are judged against it.
  let upstream: UpstreamSession;
  call.route = async (attempt: number): Promise<Routed<RpcResponse> | Unrouted> => {
    try {
      if (attempt === 1 && connectError) throw connectError;
      upstream = (attempt === 1 ? early : undefined) ?? (await gw.upstreamFor(cs, t.server));
    } catch (err) {
      // The first connect failing ends the call; a reconnect between retries failing is one more failed attempt.
      if (last) return last;
      return { value: withWorkflow(unavailable(req.id, asUpstreamError(t.server, err)), cs.workflowId), outcome: 'error', reason: 'upstream_unavailable', transportFailure: true, final: true };
    }
    if (attempt === 1) {
      // Reached only when the circuit opened for a probe between the checks and now: the reservation is given back.
      if (kind !== 'resources/read' && step.unverified && !confirmEarly && !(await nameExists(gw, cs, t, step, upstream))) return { unknown: true };
      const headers = upstreamHeaders(gw, cs, upstream);
      cs.inFlight.set(req.id, controller);
      hooks = {
        cancel: controller,
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
      // Trace context rides in hooks.headers: each connector carries it its own way (HTTP header, stdio _meta).
      upstreamParams = t.target === (readsResource ? params?.uri : params?.name) ? params : readsResource ? { ...params, uri: t.target } : { ...params, name: t.target };
    }
    const res = await upstream.request(kind, upstreamParams, hooks);
    const errReason = (res.error?.data as { reason?: string } | undefined)?.reason;
    const isError = res.error !== undefined || (res.result as { isError?: boolean } | undefined)?.isError === true;
    // A call the client (or a workflow kill) cancelled is an error with reason `cancelled` in the trail.
    const reason = errReason ?? (controller.aborted && res.error !== undefined ? 'cancelled' : readsResource && res.error?.code === RESOURCE_NOT_FOUND ? NOT_FOUND : undefined);
    const value = errReason ? withWorkflow({ ...res, id: req.id }, cs.workflowId) : { ...res, id: req.id };
    last = { value, outcome: isError ? 'error' : 'ok', reason, bytes: hooks!.responseBytes, transportFailure: isTransportFailure(res) };
    return last;
  };
  let last: Routed<RpcResponse> | undefined;

  let result;
  try {
    result = await runPipeline(gw, step, call);
  } finally {
    cs.inFlight.delete(req.id);
  }
  switch (result.kind) {
    case 'done':
      return reply.final(result.value);
    case 'unknown':
      return reply.final(unknownName(req, kind, displayName));
    case 'refused':
      if (!result.recorded) {
        gw.log.info({ workflowId: step.workflowId, agent: step.caller.agentId, tool: step.exposedName }, 'call to a name hidden by policy answered as unknown');
        return reply.final(unknownName(req, kind, displayName));
      }
      return reply.final(mcpRefusals.render(result.refusal, { id: req.id, workflowId: cs.workflowId }));
  }
}

/**
 * One MCP call as the pipeline sees it: its plan (route, confirm, breaker, retries) and the guards' context (asking
 * the client or a human, cancellation) in one object, so a call makes no closure or accessor object for either.
 */
class McpCall implements StepPlan<RpcResponse>, GuardContext {
  readonly ctx: GuardContext = this;
  confirm?: () => Promise<boolean>;
  route!: StepPlan<RpcResponse>['route'];

  constructor(
    private readonly gw: Gateway,
    private readonly cs: ClientSession,
    private readonly req: RpcRequest,
    private readonly reply: ReplyChannel,
    private readonly controller: LazyAbort,
    private readonly step: Step,
    readonly breaker: string,
  ) {}

  get clientCapabilities(): Record<string, unknown> {
    return this.cs.capabilities;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Only tools that declare themselves safe to repeat are retried, and only on transport failures. */
  retryable(attempt: number): boolean {
    return shouldRetry(this.step.annotations, attempt);
  }

  askClient(method: string, p: Record<string, unknown>): Promise<Record<string, unknown>> {
    return askOnReply(this.cs, this.reply, method, p);
  }

  askHuman(q: HumanQuestion): Promise<HumanAnswer> {
    const { cs, req, controller, gw } = this;
    cs.inFlight.set(req.id, controller);
    const ask = mcpHumanAsker({
      askClient: (method, p) => this.askClient(method, p),
      clientCapabilities: cs.capabilities,
      signal: controller.signal,
      progress: progressOf(this.reply, req.params),
      queue: gw.approvals,
      timeoutMs: gw.approvals?.timeoutMs,
    });
    return ask(q).finally(() => cs.inFlight.delete(req.id));
  }
}

/** notifications/progress to the caller while its call waits, when the request carried a progress token. */
function progressOf(reply: ReplyChannel, params: Params | undefined): ((message: string) => void) | undefined {
  const token = (params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
  if (typeof token !== 'string' && typeof token !== 'number') return undefined;
  let progress = 0;
  return (message) => {
    if (!reply.gone) reply.related({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: ++progress, message } });
  };
}

/** Per-request headers for upstreams: trace context, and a minted identity token where the manifest asks for one. */
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

/**
 * Whether the upstream has the tool or prompt (resolving shortened names nobody listed since start); marks the name
 * verified and fills tool annotations. When the list cannot be had, the upstream judges the name itself.
 */
function nameExists(gw: Gateway, cs: ClientSession, t: Target, step: Step, upstream: UpstreamSession): boolean | Promise<boolean> {
  const isTool = step.kind === 'tools/call';
  const list = isTool ? gw.toolsOf(upstream) : gw.index.promptsOf(upstream);
  // The index hands out the same promise while its list stands: once it has settled, a call checks its name at once.
  const known = settledLists.get(list);
  if (known) return nameIn(gw, cs, t, step, known);
  return list.then(
    (listed) => {
      settledLists.set(list, listed);
      return nameIn(gw, cs, t, step, listed);
    },
    () => !isTool || gw.toolAllowedByManifest(t.server, t.target),
  );
}

/** Lists the index answered, by the promise it answered them with. */
const settledLists = new WeakMap<Promise<Map<string, Item>>, Map<string, Item>>();

function nameIn(gw: Gateway, cs: ClientSession, t: Target, step: Step, listed: ReadonlyMap<string, Item>): boolean {
  const isTool = step.kind === 'tools/call';
  const name = cs.view.single ? (listed.has(t.target) ? t.target : undefined) : gw.names.find(t.server, t.exposed, t.target, listed);
  if (name === undefined || (isTool && !gw.toolAllowedByManifest(t.server, name))) return false;
  t.target = step.target = name;
  t.exposed = step.exposedName = gw.names.expose(t.server, name);
  step.unverified = false;
  const def = listed.get(name);
  if (isTool && def?.annotations) step.annotations = def.annotations as Record<string, unknown>;
  return true;
}

const NOT_FOUND = 'resource_not_found';

/**
 * A read of a URI no server in view lists or matches with a template: a failed step (recorded, never routed, so no
 * metric series carries the URI), answered as resource not found.
 */
async function unroutedRead(gw: Gateway, cs: ClientSession, req: RpcRequest, reply: ReplyChannel, uri: string): Promise<void> {
  const step: Step = { kind: 'resources/read', caller: cs.caller, workflowId: cs.workflowId, stepNo: 0, target: uri, exposedName: uri, startedAt: Date.now(), traceparent: cs.traceparent };
  const done = record(gw, step, { outcome: 'error', reason: NOT_FOUND, durationMs: Date.now() - step.startedAt });
  if (done) await done;
  reply.final(unknownName(req, 'resources/read', uri));
}

function isTransportFailure(res: RpcResponse): boolean {
  const reason = (res.error?.data as { reason?: string } | undefined)?.reason;
  return reason === 'upstream_unavailable' || reason === 'upstream_timeout';
}

export function withWorkflow(res: RpcResponse, workflowId: string): RpcResponse {
  if (!res.error) return res;
  return { ...res, error: { ...res.error, data: { ...(res.error.data as object), workflowId } } };
}

/** Ask the client on the call's own stream (the POST that caused it), falling back to the session stream. */
async function askOnReply(cs: ClientSession, reply: ReplyChannel, method: string, params: Params | undefined): Promise<Record<string, unknown>> {
  const res = await cs.ask({ method, params }, (msg) => (reply.gone ? cs.push(msg) : reply.related(msg)));
  if (res.error) throw Object.assign(new Error(res.error.message), { rpc: res });
  return (res.result ?? {}) as Record<string, unknown>;
}

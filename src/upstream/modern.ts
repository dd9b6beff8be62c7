/**
 * Speaking MCP 2026-07-28 to an upstream: server/discover instead of initialize, and on every request the
 * revision's `_meta` envelope (the calling client's capabilities) with the Mcp-Method / Mcp-Name headers.
 */
import type { ServerManifest } from '../config/types.js';
import { errorResponse, REQUEST_CANCELLED, type Params, type RpcRequest, type RpcResponse } from '../util/jsonrpc.js';
import type { UpstreamError } from './errors.js';
import type { CallHooks, ClientInit } from './session.js';

export const MODERN_UPSTREAM_REVISION = '2026-07-28';

/** How long `auto` waits for server/discover before it takes the silence as a legacy server's (decision 0029). */
export const PROBE_TIMEOUT_MS = 5_000;

/** What the gateway speaks first: the manifest's choice; absent, http probes (auto) and stdio/sse initialize. */
export function wantedRevision(m: ServerManifest): 'auto' | '2026-07-28' | '2025-11-25' {
  if (m.protocol) return m.protocol;
  return m.transport === 'http' ? 'auto' : '2025-11-25';
}

/**
 * The probe's verdict: `modern` for a discover result offering 2026-07-28; `legacy` for what a 2025-11-25 server
 * says to a method it does not know (a JSON-RPC error, HTTP 400/404/405 and the like, or silence); an error for
 * what initialize would meet too (auth walls, 5xx, an unreachable host), so it is reported once, as it is.
 */
export function probeVerdict(res: RpcResponse | undefined, failure: UpstreamError | undefined): 'modern' | 'legacy' | UpstreamError {
  if (failure) {
    if (failure.code === 'timeout') return 'legacy';
    const status = failure.info.status;
    if (failure.code === 'http_status' && status !== undefined && status < 500 && status !== 401 && status !== 403) return 'legacy';
    return failure;
  }
  if (!res || res.error) return 'legacy';
  const versions = (res.result as { supportedVersions?: unknown } | undefined)?.supportedVersions;
  return Array.isArray(versions) && versions.includes(MODERN_UPSTREAM_REVISION) ? 'modern' : 'legacy';
}

/** The request's own `_meta` with the envelope added where the caller did not set it. */
export function withModernEnvelope(init: ClientInit, params: Params | undefined): Params {
  const meta = (params?._meta as Record<string, unknown> | undefined) ?? {};
  return {
    ...params,
    _meta: {
      'io.modelcontextprotocol/protocolVersion': MODERN_UPSTREAM_REVISION,
      'io.modelcontextprotocol/clientCapabilities': init.capabilities,
      'io.modelcontextprotocol/clientInfo': init.clientInfo,
      ...meta,
    },
  };
}

/** How soon a closed upstream subscriptions/listen is opened again, doubling (to 30 s) while it keeps ending fast. */
export const LISTEN_RETRY_MS = 1_000;

/** The subscriptions/listen filter for the list kinds the upstream says change, or undefined when none does. */
export function listenFilter(capabilities: Record<string, unknown>): Record<string, boolean> | undefined {
  const filter: Record<string, boolean> = {};
  for (const [kind, key] of [['tools', 'toolsListChanged'], ['prompts', 'promptsListChanged'], ['resources', 'resourcesListChanged']] as const) {
    if ((capabilities[kind] as { listChanged?: unknown } | undefined)?.listChanged === true) filter[key] = true;
  }
  return Object.keys(filter).length > 0 ? filter : undefined;
}

/** Mcp-Method always; Mcp-Name for the methods that name a tool, prompt or resource. */
export function modernHeaders(method: string, params: Params | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'mcp-method': method };
  const name = method === 'tools/call' || method === 'prompts/get' ? params?.name : method === 'resources/read' ? params?.uri : undefined;
  if (typeof name === 'string') headers['mcp-name'] = name;
  return headers;
}

/** What a server/discover result says, in the shape an initialize result gave. */
export function readDiscover(result: Record<string, unknown> | undefined): { capabilities: Record<string, unknown>; serverInfo: Record<string, unknown>; instructions?: string } {
  const meta = (result?._meta as Record<string, unknown> | undefined) ?? {};
  const info = (meta['io.modelcontextprotocol/serverInfo'] ?? result?.serverInfo) as Record<string, unknown> | undefined;
  return {
    capabilities: (result?.capabilities as Record<string, unknown> | undefined) ?? {},
    serverInfo: info ?? {},
    instructions: typeof result?.instructions === 'string' ? result.instructions : undefined,
  };
}

/**
 * Marks a server-to-client request that stands for one entry of a modern upstream's `input_required` result
 * (a non-enumerable symbol key on its params, so it never reaches a wire). A caller that takes input_required
 * itself (a 2026-07-28 client) answers it with an error whose data.reason is INPUT_RELAYED.
 */
export const INPUT_ROUND = Symbol.for('io.switchyard/inputRound');
export const INPUT_RELAYED = 'input_relayed';
/** One call's rounds of input the gateway asks a legacy client for, at most (an upstream asking forever is refused). */
export const MAX_INPUT_ROUNDS = 16;

interface InputRequired {
  resultType?: unknown;
  inputRequests?: Record<string, { method?: unknown; params?: Record<string, unknown> }>;
  requestState?: unknown;
}

/** Whether params carry the INPUT_ROUND mark. */
export function isInputRound(params: Params | undefined): boolean {
  return params !== undefined && Object.prototype.hasOwnProperty.call(params, INPUT_ROUND);
}

/**
 * A modern upstream answered `input_required`: each input request goes to the caller as a real server-to-client
 * request (a legacy client gets it on the call's POST stream), and the answers go back as the retry, with
 * `inputResponses` and the upstream's own `requestState` untouched, until the call completes.
 */
export async function driveInputRequired(first: RpcResponse, params: Params | undefined, hooks: CallHooks, resend: (params: Params) => Promise<RpcResponse>): Promise<RpcResponse> {
  const ask = hooks.onServerRequest;
  let res = first;
  for (let round = 1; ask; round++) {
    const result = res.result as InputRequired | undefined;
    if (res.error || result?.resultType !== 'input_required' || typeof result.inputRequests !== 'object' || result.inputRequests === null) return res;
    if (round > MAX_INPUT_ROUNDS) return errorResponse(res.id, -32603, `The server asked for client input ${MAX_INPUT_ROUNDS} times in one call; the gateway stopped there. Report it to the server's maintainer.`);
    const inputResponses: Record<string, unknown> = {};
    for (const [key, request] of Object.entries(result.inputRequests)) {
      if (hooks.signal?.aborted) return errorResponse(res.id, REQUEST_CANCELLED, `Request cancelled: ${String(hooks.signal.reason ?? 'cancelled by client')}`);
      if (typeof request?.method !== 'string') return errorResponse(res.id, -32603, `The server's input request ${JSON.stringify(key)} names no method; the call cannot go on.`);
      const asked: Params = { ...(request.params ?? {}) };
      Object.defineProperty(asked, INPUT_ROUND, { value: { key, round }, enumerable: false });
      const msg: RpcRequest = { jsonrpc: '2.0', id: `input-${round}-${key}`, method: request.method, params: asked };
      const answer = await ask(msg);
      if (answer.error) {
        if ((answer.error.data as { reason?: unknown } | undefined)?.reason === INPUT_RELAYED) return res;
        return errorResponse(res.id, answer.error.code, `The server needed ${request.method} from the client, which answered: ${answer.error.message}`);
      }
      inputResponses[key] = answer.result;
    }
    const { requestState: _previous, inputResponses: _given, ...rest } = params ?? {};
    res = await resend({ ...rest, inputResponses, ...(typeof result.requestState === 'string' ? { requestState: result.requestState } : {}) });
  }
  return res;
}

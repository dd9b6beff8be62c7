/**
 * Speaking MCP 2026-07-28 to an upstream: server/discover instead of initialize, and on every request the
 * revision's `_meta` envelope (the calling client's capabilities) with the Mcp-Method / Mcp-Name headers.
 */
import type { ServerManifest } from '../config/types.js';
import type { Params, RpcResponse } from '../util/jsonrpc.js';
import type { UpstreamError } from './errors.js';
import type { ClientInit } from './session.js';

export const MODERN_UPSTREAM_REVISION = '2026-07-28';

/** How long `auto` waits for server/discover before it takes the silence as a legacy server's (decision 0091). */
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

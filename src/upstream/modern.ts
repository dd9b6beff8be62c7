/**
 * Speaking MCP 2026-07-28 to an upstream: server/discover instead of initialize, and on every request the
 * revision's `_meta` envelope (the calling client's capabilities) with the Mcp-Method / Mcp-Name headers.
 */
import type { Params } from '../util/jsonrpc.js';
import type { ClientInit } from './session.js';

export const MODERN_UPSTREAM_REVISION = '2026-07-28';

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

/**
 * MCP 2026-07-28 on one HTTP POST: which revision a request speaks, and the revision's validation ladder
 * (Mcp-Method / Mcp-Name / MCP-Protocol-Version headers against the body, then the per-request `_meta`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { clip } from '../../util/shown.js';
import { errorResponse, RpcErrorCode, type RpcId, type RpcResponse } from '../../util/jsonrpc.js';

export const MODERN_REVISION = '2026-07-28';
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
export const META_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';
export const META_WORKFLOW_ID = 'io.switchyard/workflowId';

/** Error codes of the revision (renumbered in spec#2907). */
export const HEADER_MISMATCH = -32020;
export const MISSING_REQUIRED_CLIENT_CAPABILITY = -32021;
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

export interface ModernMeta {
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: { name: string; version: string; [k: string]: unknown };
  logLevel?: string;
}

/** A request the ladder turned away: the HTTP status and the JSON-RPC error to send. */
export interface Rejection {
  status: number;
  body: RpcResponse;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Whether a parsed POST body speaks 2026-07-28: it carries the `_meta` protocol-version claim, or (outside a legacy
 * session) its MCP-Protocol-Version header names a revision no legacy session speaks. Everything else, `initialize`
 * included, stays on the session path.
 */
export function claimsModern(headers: IncomingHttpHeaders, body: unknown, legacyVersions: readonly string[]): boolean {
  if (!isObject(body) || typeof body.method !== 'string') return false;
  const meta = isObject(body.params) ? body.params._meta : undefined;
  if (isObject(meta) && META_PROTOCOL_VERSION in meta) return true;
  if (header(headers, 'mcp-session-id')) return false;
  const pv = header(headers, 'mcp-protocol-version');
  return pv !== undefined && !legacyVersions.includes(pv);
}

/** The field Mcp-Name mirrors for a method, when it has one. */
function nameField(method: string): 'name' | 'uri' | undefined {
  if (method === 'tools/call' || method === 'prompts/get') return 'name';
  if (method === 'resources/read') return 'uri';
  return undefined;
}

function mismatch(id: RpcId | null, headerValue: string | undefined, what: string): Rejection {
  return {
    status: 400,
    body: errorResponse(id, HEADER_MISMATCH, `Bad Request: the request headers and body disagree: ${what}. Send headers that repeat the body.`, {
      mismatch: { header: headerValue ?? '(missing)', body: what },
    }),
  };
}

/**
 * The revision's ladder for one request or notification: headers first (HeaderMismatch), then the `_meta` envelope
 * (-32602), then the version (UnsupportedProtocolVersion). Returns the validated `_meta` or the rejection.
 */
export function validateModern(
  headers: IncomingHttpHeaders,
  id: RpcId | null,
  method: string,
  params: Record<string, unknown> | undefined,
): ModernMeta | Rejection {
  const mcpMethod = header(headers, 'mcp-method');
  if (mcpMethod !== method) {
    return mismatch(id, mcpMethod, mcpMethod === undefined ? `the body's method is ${clip(method)} but the required Mcp-Method header is absent` : `Mcp-Method names ${clip(mcpMethod)} but the body's method is ${clip(method)}`);
  }
  const field = nameField(method);
  const named = field ? params?.[field] : undefined;
  if (field && typeof named === 'string') {
    const mcpName = header(headers, 'mcp-name');
    if (mcpName !== named) {
      return mismatch(id, mcpName, mcpName === undefined ? `the body carries params.${field}=${JSON.stringify(clip(named))} but the required Mcp-Name header is absent` : `Mcp-Name names ${JSON.stringify(clip(mcpName))} but params.${field} is ${JSON.stringify(clip(named))}`);
    }
  }
  const meta = params?._meta;
  const missing: string[] = [];
  if (!isObject(meta)) missing.push('_meta');
  else {
    if (typeof meta[META_PROTOCOL_VERSION] !== 'string') missing.push(`_meta["${META_PROTOCOL_VERSION}"] (a string)`);
    if (!isObject(meta[META_CLIENT_CAPABILITIES])) missing.push(`_meta["${META_CLIENT_CAPABILITIES}"] (an object)`);
  }
  if (missing.length > 0) {
    return {
      status: 400,
      body: errorResponse(id, RpcErrorCode.InvalidParams, `Invalid params: a ${MODERN_REVISION} request must carry ${missing.join(' and ')}.`, { envelope: { missing } }),
    };
  }
  const m = meta as Record<string, unknown>;
  const version = m[META_PROTOCOL_VERSION] as string;
  const pv = header(headers, 'mcp-protocol-version');
  if (pv !== version) {
    return mismatch(id, pv, pv === undefined ? `_meta names protocol version ${clip(version)} but the MCP-Protocol-Version header is absent` : `_meta names protocol version ${clip(version)} but the MCP-Protocol-Version header names ${clip(pv)}`);
  }
  if (version !== MODERN_REVISION) {
    return {
      status: 400,
      body: errorResponse(id, UNSUPPORTED_PROTOCOL_VERSION, `Unsupported protocol version ${clip(version)}: this endpoint serves ${MODERN_REVISION} per request (and older revisions through initialize).`, {
        supported: [MODERN_REVISION],
        requested: version,
      }),
    };
  }
  const info = m[META_CLIENT_INFO];
  const clientInfo = isObject(info) && typeof info.name === 'string' ? { ...info, name: info.name, version: typeof info.version === 'string' ? info.version : '0' } : { name: 'unknown', version: '0' };
  const logLevel = typeof m[META_LOG_LEVEL] === 'string' ? (m[META_LOG_LEVEL] as string) : undefined;
  return { protocolVersion: version, clientCapabilities: m[META_CLIENT_CAPABILITIES] as Record<string, unknown>, clientInfo, logLevel };
}

export function isRejection(v: ModernMeta | Rejection): v is Rejection {
  return 'status' in v;
}

/** Envelope keys the gateway consumed: each upstream gets its own envelope (its revision, the caller's capabilities). */
const CONSUMED = new Set([META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES, META_CLIENT_INFO]);

/** The caller's `_meta` without the envelope the gateway consumed (logLevel and everything else pass on). */
export function withoutEnvelope(params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!params || !isObject(params._meta)) return params;
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params._meta)) if (!CONSUMED.has(k)) rest[k] = v;
  const { _meta: _dropped, ...others } = params;
  return Object.keys(rest).length > 0 ? { ...others, _meta: rest } : others;
}

/**
 * Why an upstream could not serve, as data: a cause code, one clause an agent may read (no paths, command lines
 * or URLs) and one clause for the operator (with the specifics and the manifest field to check). Each layer passes
 * the error on unchanged; the edges render it once: as a JSON-RPC error for agents, as one log line for operators.
 */
import { isAbsolute, relative } from 'node:path';
import { errorResponse, REFUSAL_CODE, type RpcId, type RpcResponse } from '../util/jsonrpc.js';
import { clip, maskUrls } from '../util/shown.js';

export type UpstreamCause =
  | 'not_found'
  | 'spawn_failed'
  | 'exited'
  | 'unreachable'
  | 'http_status'
  | 'refused_initialize'
  | 'timeout'
  | 'closed'
  | 'backoff'
  | 'down'
  | 'removed'
  | 'failed';

export interface UpstreamErrorInit {
  /** The operator's account: specifics that must not reach agents (command, safe URL, stderr tail). */
  operator?: string;
  /** The manifest field(s) to check, for the operator's hint. */
  field?: string;
  /** cause 'timeout': the method and the limit. */
  method?: string;
  timeoutMs?: number;
  /** cause 'backoff': seconds until the next attempt. */
  retryInS?: number;
  /** cause 'http_status': the status the upstream answered. */
  status?: number;
}

export class UpstreamError extends Error {
  readonly operator: string;

  constructor(readonly server: string, readonly code: UpstreamCause, readonly detail: string, readonly info: UpstreamErrorInit = {}) {
    super(detail);
    this.name = 'UpstreamError';
    this.operator = maskUrls(info.operator ?? detail);
  }

}

/** The server was stopped while a caller wanted it (its manifest changed or was removed, or the gateway stops). */
export function stoppedError(server: string): UpstreamError {
  return new UpstreamError(server, 'removed', 'it was stopped (its manifest changed or was removed)');
}

/** Any error from a transport or library as an UpstreamError; foreign messages reach only the operator. */
export function asUpstreamError(server: string, err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as Error;
  return new UpstreamError(server, 'failed', 'it failed unexpectedly', { operator: e?.message ?? String(err) });
}

const NET_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed while writing',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

const NET_CODE_IN_TEXT = /\b(EAI_AGAIN|E[A-Z]{4,}|UND_ERR_[A-Z_]+|CERT_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT)\b/;

/** A network failure as a short clause, e.g. "connection refused (ECONNREFUSED)". */
export function describeNetworkError(err: unknown): string {
  let e = err as (Error & { code?: unknown; cause?: unknown }) | undefined;
  for (let depth = 0; e && depth < 4; depth++, e = e.cause as typeof e) {
    // Some libraries keep the code only in the text ("SSE error: TypeError: fetch failed: connect ECONNREFUSED …").
    const code = typeof e.code === 'string' ? e.code : NET_CODE_IN_TEXT.exec(String(e.message))?.[1];
    if (code) return `${NET_CODES[code] ?? 'network error'} (${code})`;
  }
  return 'network error';
}

const RESTART_HINT = 'The gateway reconnects with backoff; retry shortly.';

/** The agent's sentence for an upstream failure: the server, one cause, one hint. */
export function agentMessage(err: UpstreamError): string {
  switch (err.code) {
    case 'timeout':
      if (err.info.method === 'initialize') return `Upstream '${err.server}' is unavailable: it did not start and initialize within ${err.info.timeoutMs ?? 0} ms; raise connectTimeoutMs in its manifest if it is slow to start.`;
      return `Upstream '${err.server}' did not answer ${err.info.method ?? 'the request'} within ${err.info.timeoutMs ?? 0} ms; raise timeoutMs in its manifest if it is legitimately slow.`;
    case 'down':
      return `Upstream '${err.server}' is unavailable: it is down and the gateway rechecks it in the background; retry shortly.`;
    case 'backoff':
      return `Upstream '${err.server}' is unavailable: ${err.detail}; the next attempt is in ${err.info.retryInS ?? 1} s, retry then.`;
    case 'removed':
      return `Upstream '${err.server}' is unavailable: ${err.detail}. List the tools again to see what is served.`;
    default:
      return `Upstream '${err.server}' is unavailable: ${err.detail}. ${RESTART_HINT}`;
  }
}

/** The JSON-RPC error an agent receives for an upstream failure. */
export function unavailable(id: RpcId | null, err: UpstreamError): RpcResponse {
  // A handshake that timed out is a server that could not be reached, not a slow call.
  if (err.code === 'timeout' && err.info.method !== 'initialize') {
    return errorResponse(id, REFUSAL_CODE, agentMessage(err), { reason: 'upstream_timeout', server: err.server, timeoutMs: err.info.timeoutMs });
  }
  return errorResponse(id, REFUSAL_CODE, agentMessage(err), { reason: 'upstream_unavailable', server: err.server });
}

/** The operator's line for an upstream that could not start: what happened and which manifest field to check. */
export function startFailureLine(err: UpstreamError, manifestFile: string): string {
  const rel = relative(process.cwd(), manifestFile);
  const file = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : manifestFile;
  const check = err.info.field ? `; check ${file} ${err.info.field}` : `; check ${file}`;
  return `upstream '${err.server}' could not start: ${err.operator}${check}`;
}

const MCP_PREFIX = /^(?:MCP error -?\d+: )+/;

/** The SDK prefixes "MCP error <code>: " to messages it sends, and its client adds another: keep none upstream's. */
export function withoutMcpPrefix(message: string): string {
  return message.startsWith('MCP error ') ? message.replace(MCP_PREFIX, '') : message;
}

/** Upstream error messages may echo what they were sent: relayed once-prefixed at most, and capped. */
export const RELAYED_MESSAGE_MAX = 500;

export function relayedMessage(message: string): string {
  return clip(withoutMcpPrefix(message), RELAYED_MESSAGE_MAX);
}

interface SchemaIssue {
  path?: unknown[];
  message?: unknown;
}

/**
 * An upstream error as it is relayed. An SDK server whose request schema rejects the params answers -32603 with
 * the raw issue list as its message: that is the caller's mistake, so it becomes -32602 with one sentence.
 */
export function relayedError(error: { code: number; message: string; data?: unknown }): void {
  const message = withoutMcpPrefix(error.message);
  const issues = error.code === -32603 && message.startsWith('[') ? schemaIssues(message) : undefined;
  if (issues) {
    error.code = -32602;
    const what = issues.map((i) => `${i.path?.length ? i.path.join('.') : 'params'}: ${String(i.message)}`).join('; ');
    error.message = clip(`Invalid params: ${what}.`, RELAYED_MESSAGE_MAX);
    return;
  }
  error.message = clip(message, RELAYED_MESSAGE_MAX);
}

function schemaIssues(text: string): SchemaIssue[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed) || parsed.length === 0) return undefined;
    return parsed.every((i) => typeof i === 'object' && i !== null && typeof (i as SchemaIssue).message === 'string' && Array.isArray((i as SchemaIssue).path)) ? (parsed as SchemaIssue[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * MCP authorization on plain node:http: RFC 9728 protected-resource metadata, 401/403 answers with the
 * WWW-Authenticate header clients use to find the authorization server, and the admin token check.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IssuerConfig } from '../config/types.js';
import { ApiKeyIndex } from '../identity/apikeys.js';
import type { AuthFailure, Authenticator, AuthInput, AuthOutcome } from '../identity/authenticate.js';
import { REFUSAL_CODE } from '../util/jsonrpc.js';
import type { AuthResult } from './mcp-http.js';

export const PROTECTED_RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  bearer_methods_supported: ['header'];
  scopes_supported?: string[];
}

export interface ResourceLocation {
  /** Public base URL of the gateway, e.g. `https://gw.example.com` (a trailing slash is ignored). */
  publicUrl: string;
  /** Path of the protected resource: `/mcp`, `/servers/github/mcp`, or `` for the whole origin. */
  resourcePath: string;
}

function trimSlash(s: string): string {
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

/** The resource identifier: the URL clients connect to. */
export function resourceUrl(publicUrl: string, resourcePath: string): string {
  return trimSlash(publicUrl) + trimSlash(resourcePath);
}

/** RFC 9728 §3.1: the metadata URL inserts the well-known segment between origin and resource path. */
export function resourceMetadataUrl(publicUrl: string, resourcePath: string): string {
  return trimSlash(publicUrl) + PROTECTED_RESOURCE_METADATA_PATH + trimSlash(resourcePath);
}

/**
 * The resource path a metadata request is about (`/.well-known/oauth-protected-resource/mcp` → `/mcp`, the bare
 * well-known path → ``), or undefined when the request path is not a metadata path.
 */
export function resourcePathOfMetadataRequest(requestPath: string): string | undefined {
  if (!requestPath.startsWith(PROTECTED_RESOURCE_METADATA_PATH)) return undefined;
  const rest = requestPath.slice(PROTECTED_RESOURCE_METADATA_PATH.length);
  if (rest !== '' && !rest.startsWith('/')) return undefined;
  return trimSlash(rest);
}

/**
 * Whether there is an OAuth authorization server to point clients at (an issuer in gateway.yaml `auth.issuers`). Without
 * one (API keys only) the resource metadata is not served, so OAuth clients do not start a flow that cannot succeed.
 */
export function hasAuthorizationServer(authenticator: Pick<Authenticator, 'verifier'>): boolean {
  return authenticator.verifier.configuredIssuerCount > 0;
}

export const NO_AUTHORIZATION_SERVER =
  'This gateway has no OAuth authorization server (gateway.yaml auth.issuers is empty); send an API key as Authorization: Bearer <key>.';

/** RFC 9728 metadata for one resource; authorization servers are the issuers of gateway.yaml `auth.issuers`. */
export function protectedResourceMetadata(
  publicUrl: string,
  issuers: ReadonlyArray<IssuerConfig | string>,
  resourcePath = '/mcp',
  scopesSupported?: string[],
): ProtectedResourceMetadata {
  const servers = [...new Set(issuers.map((i) => (typeof i === 'string' ? i : i.issuer)))];
  return {
    resource: resourceUrl(publicUrl, resourcePath),
    authorization_servers: servers,
    bearer_methods_supported: ['header'],
    ...(scopesSupported && scopesSupported.length > 0 ? { scopes_supported: scopesSupported } : {}),
  };
}

/**
 * A quoted-string for an auth-param: visible ASCII only (RFC 6750 §3 for error_description), so no character a token
 * or message carries can break the header or make Node refuse to send it.
 */
function quoted(value: string): string {
  return `"${value.replace(/[\t\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, '\\$&')}"`;
}

export interface ChallengeOptions {
  error?: string;
  description?: string;
  scope?: string;
}

/** `Bearer resource_metadata="…", error="…", error_description="…", scope="…"` */
export function bearerChallenge(where: ResourceLocation | undefined, opts: ChallengeOptions = {}): string {
  const params: string[] = [];
  if (where) params.push(`resource_metadata=${quoted(resourceMetadataUrl(where.publicUrl, where.resourcePath))}`);
  if (opts.error) params.push(`error=${quoted(opts.error)}`);
  if (opts.description) params.push(`error_description=${quoted(opts.description)}`);
  if (opts.scope) params.push(`scope=${quoted(opts.scope)}`);
  return params.length > 0 ? `Bearer ${params.join(', ')}` : 'Bearer';
}

/** A JSON-RPC error body carrying SPEC §7's `unauthenticated` reason, so MCP clients show the message. */
function refusalBody(message: string, error: string | undefined): Record<string, unknown> {
  return { jsonrpc: '2.0', id: null, error: { code: REFUSAL_CODE, message, data: { reason: 'unauthenticated', ...(error ? { error } : {}) } } };
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/**
 * Status, headers and body for a failed authentication (shape of McpHttpOptions.authenticate's failure). Without a
 * location (no authorization server to offer) the challenge names no resource metadata.
 */
export function authFailureResponse(failure: AuthFailure, where: ResourceLocation | undefined): { status: number; headers: Record<string, string>; body: Record<string, unknown> } {
  // 403 access_denied is about who the caller is, not about its token: a new token would not help, so no challenge.
  const headers: Record<string, string> =
    failure.status === 403 ? {} : { 'www-authenticate': bearerChallenge(where, { error: failure.error, description: failure.error ? failure.message : undefined }) };
  return { status: failure.status, headers, body: refusalBody(failure.message, failure.error) };
}

export function sendAuthFailure(res: ServerResponse, failure: AuthFailure, where: ResourceLocation | undefined): void {
  const r = authFailureResponse(failure, where);
  send(res, r.status, r.headers, r.body);
}

export function sendUnauthorized(res: ServerResponse, opts: ResourceLocation & { error?: string; description?: string; scope?: string }): void {
  const message = opts.description ?? 'Authentication required: send Authorization: Bearer <token>.';
  send(res, 401, { 'www-authenticate': bearerChallenge(opts, opts) }, refusalBody(message, opts.error));
}

/** 403 for a valid token that lacks the rights this endpoint needs; `scope` names what would be enough. */
export function sendInsufficientScope(res: ServerResponse, scope: string, where?: ResourceLocation & { description?: string }): void {
  const message = where?.description ?? `This token lacks the scope this endpoint needs (${scope}); request a token with it.`;
  send(res, 403, { 'www-authenticate': bearerChallenge(where, { error: 'insufficient_scope', description: message, scope }) }, refusalBody(message, 'insufficient_scope'));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Whether the request URL carries `access_token` (refused: URLs leak into logs and histories). */
export function queryHasAccessToken(url: string | undefined): boolean {
  if (!url || !url.includes('access_token')) return false;
  const q = url.indexOf('?');
  return q >= 0 && new URLSearchParams(url.slice(q + 1)).has('access_token');
}

/** The credential header a request sent more than once (node keeps only the first Authorization and joins X-API-Key). */
function repeatedCredentialHeader(raw: readonly string[]): string | undefined {
  let authorization = 0;
  let apiKey = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization') authorization++;
    else if (name.length === 9 && name.toLowerCase() === 'x-api-key') apiKey++;
  }
  return authorization > 1 ? 'Authorization' : apiKey > 1 ? 'X-API-Key' : undefined;
}

/** The Authenticator's input, read off a node:http request. */
export function authInputOf(req: IncomingMessage): AuthInput {
  return {
    authorization: header(req, 'authorization'),
    apiKeyHeader: header(req, 'x-api-key'),
    remoteAddress: req.socket.remoteAddress,
    queryHasToken: queryHasAccessToken(req.url),
    repeatedHeader: repeatedCredentialHeader(req.rawHeaders),
  };
}

/**
 * McpHttpOptions.authenticate: the Authenticator on a request, failures rendered with the right status and challenge.
 * The challenge points at the resource metadata only when the gateway has an authorization server (an issuer) to offer.
 */
export function createHttpAuthenticate(
  authenticator: Authenticator,
  opts: { publicUrl: string },
): (req: IncomingMessage, resourcePath: string) => AuthResult | Promise<AuthResult> {
  return (req, resourcePath) => {
    const render = (outcome: AuthOutcome): AuthResult =>
      outcome.ok
        ? outcome
        : { ok: false, ...authFailureResponse(outcome, hasAuthorizationServer(authenticator) ? { publicUrl: opts.publicUrl, resourcePath } : undefined) };
    const outcome = authenticator.authenticate(authInputOf(req));
    return outcome instanceof Promise ? outcome.then(render) : render(outcome);
  };
}

/** `admin.tokens` holds `sha256:` hashes; returns a check of an Authorization header against them (false when none are set). */
export function adminTokenCheck(adminHashes: readonly string[]): (authorizationHeader: string | undefined) => boolean {
  const index = new ApiKeyIndex<true>();
  for (const ref of adminHashes) index.add(ref, true);
  return (authorizationHeader) => {
    const m = authorizationHeader ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorizationHeader.trim()) : null;
    return m ? index.lookup(m[1]!) === true : false;
  };
}

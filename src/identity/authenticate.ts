/** Turns the credentials on a request into a Caller: bearer JWT, API key, delegated token, or local mode on loopback. */
import type { AgentManifest } from '../config/types.js';
import { isLoopback } from '../util/net.js';
import type { Caller } from '../gateway/types.js';
import { looksLikeJwt } from './apikeys.js';
import { shown } from './claim-text.js';
import type { JwtErrorCode, JwtVerification, JwtVerifier } from './jwt.js';
import { LOCAL_AGENT_ID, type AgentRegistry, type ClaimMatch } from './registry.js';

export interface AuthInput {
  /** The raw `Authorization` header. */
  authorization?: string;
  /** The raw `X-API-Key` header. */
  apiKeyHeader?: string;
  remoteAddress?: string;
  /** The URL carried `access_token`: refused, as URLs end up in logs and histories. */
  queryHasToken?: boolean;
  /** A credential header (`Authorization`, `X-API-Key`) the request sent more than once: refused, as either could be meant. */
  repeatedHeader?: string;
}

/**
 * RFC 6750 error codes, plus `access_denied` for a valid credential that no agent owns (403).
 * Absent when the request carried no credentials at all (RFC 6750 §3.1).
 */
export type AuthErrorCode = 'invalid_token' | 'invalid_request' | 'access_denied';

export interface AuthFailure {
  ok: false;
  status: 400 | 401 | 403;
  reason: 'unauthenticated';
  error?: AuthErrorCode;
  /** Why a JWT failed verification, for logs and tests. */
  tokenError?: JwtErrorCode | 'revoked';
  message: string;
}

export type AuthOutcome = { ok: true; caller: Caller } | AuthFailure;

export interface AuthenticatorOptions {
  verifier: JwtVerifier;
  registry: AgentRegistry;
}

const BEARER_SCHEME = /^Bearer(?=[ \t]|$)/i;
const WHITESPACE = /\s/;
const LOCAL_PRINCIPAL = `local:${LOCAL_AGENT_ID}`;

function refuse(status: AuthFailure['status'], error: AuthErrorCode | undefined, message: string, tokenError?: AuthFailure['tokenError']): AuthFailure {
  return { ok: false, status, reason: 'unauthenticated', error, message, tokenError };
}

/** RFC 8693 `act` chain as subjects, root actor first (the outermost `act` is the most recent actor). */
export function actChain(claims: Readonly<Record<string, unknown>>): string[] {
  const chain: string[] = [];
  let act = claims.act as Record<string, unknown> | undefined;
  for (let hops = 0; act && typeof act === 'object' && hops < 32; hops++) {
    if (typeof act.sub === 'string') chain.unshift(act.sub);
    act = act.act as Record<string, unknown> | undefined;
  }
  return chain;
}

/** Principal keys per verified token: the verifier hands back the same frozen claims while a token stays cached. */
const principals = new WeakMap<object, string>();

/** Issuer, subject, client, act chain and scope; a delegated token adds its `jti`, as each one is its own grant. */
function tokenPrincipal(claims: Readonly<Record<string, unknown>>, delegated: boolean): string {
  let key = principals.get(claims);
  if (key === undefined) {
    key = JSON.stringify([delegated ? 'delegated' : 'jwt', claims.iss, claims.sub, claims.client_id, claims.azp, actChain(claims), claims.scope, delegated ? claims.jti : null]);
    principals.set(claims, key);
  }
  return key;
}

function stringClaim(claims: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = claims[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** A token that names its subject through a client (client_id/azp) is a human's token; its user is that human. */
function userOfExternalToken(claims: Readonly<Record<string, unknown>>, match: ClaimMatch): string | undefined {
  const actRoot = actChain(claims)[0];
  if (actRoot) return actRoot;
  if (match.matchedBy !== 'sub') {
    const sub = stringClaim(claims, 'sub');
    const client = stringClaim(claims, match.matchedBy);
    const human = stringClaim(claims, 'email') ?? (sub !== client ? sub : undefined);
    if (human) return human;
  }
  return match.agent.owner;
}

/** A verified bearer as its Authorization header carried it, for the verifier generation it was verified under. */
interface KnownHeader {
  verification: JwtVerification & { ok: true };
  expiresAtMs: number;
  generation: number;
}

/** Authorization headers remembered; more distinct ones start the memo afresh (they are then parsed as before). */
const MAX_KNOWN_HEADERS = 1024;

/** The outcome derived from one cached verification, for the registry generation it was derived under. */
interface DerivedOutcome {
  generation: number;
  outcome: AuthOutcome;
}

export class Authenticator {
  readonly verifier: JwtVerifier;
  readonly registry: AgentRegistry;
  /**
   * A verified external token's outcome, keyed by the verifier's cached verification (the same object while the token
   * stays cached, dropped with it): a repeated bearer skips the claim matching and gets the same frozen Caller.
   */
  readonly #derived = new WeakMap<JwtVerification, DerivedOutcome>();
  /**
   * Verified bearer JWTs by the exact Authorization header: a repeated header is not trimmed, matched and scanned
   * again nor looked up in the verifier's LRU; its expiry, the issuers' generation and the revocation list still
   * apply on every request.
   */
  readonly #knownHeaders = new Map<string, KnownHeader>();
  #isRevoked: (jti: string) => boolean = () => false;
  #tokenKnown: (jti: string) => void | Promise<unknown> = () => undefined;

  constructor(opts: AuthenticatorOptions) {
    this.verifier = opts.verifier;
    this.registry = opts.registry;
  }

  /** Refuse tokens whose `jti` was revoked (delegation revocation list); checked on every request, cached or not. */
  setRevocationCheck(isRevoked: (jti: string) => boolean): void {
    this.#isRevoked = isRevoked;
  }

  /**
   * Before a delegated token's first call on this replica, make sure its record (budget, ancestors' scopes) is here:
   * a replica may see a token minted on another before the announcement arrives.
   */
  setTokenLoader(ensure: (jti: string) => void | Promise<unknown>): void {
    this.#tokenKnown = ensure;
  }

  /** No issuer and no API key anywhere: only loopback callers, as agent `local`. Re-evaluated after each reload. */
  get localMode(): boolean {
    return this.verifier.configuredIssuerCount === 0 && !this.registry.hasApiKeys;
  }

  /** Synchronous when the bearer was verified before (or is an API key); a Promise only for a fresh JWT. */
  authenticate(input: AuthInput): AuthOutcome | Promise<AuthOutcome> {
    if (input.queryHasToken) {
      return refuse(400, 'invalid_request', 'Access tokens in the URL are refused; send the token in the Authorization: Bearer header.');
    }
    if (input.repeatedHeader) {
      return refuse(400, 'invalid_request', `This request carries several ${input.repeatedHeader} headers, so its credential is ambiguous; send exactly one.`);
    }
    if (input.authorization !== undefined && input.apiKeyHeader === undefined) {
      const known = this.#knownHeaders.get(input.authorization);
      if (known && known.generation === this.verifier.generation && this.verifier.current(known.expiresAtMs) && !this.localMode) return this.#fromVerification(known.verification);
    }
    const authorization = input.authorization?.trim();
    const apiKey = input.apiKeyHeader?.trim();
    if (authorization && apiKey) {
      return refuse(400, 'invalid_request', 'Send one credential: either Authorization: Bearer or X-API-Key, not both.');
    }
    let bearer: string | undefined;
    if (authorization) {
      if (!BEARER_SCHEME.test(authorization)) return refuse(401, undefined, 'Only Bearer credentials are accepted; send Authorization: Bearer <token or API key>.');
      bearer = authorization.slice(6).trim();
      if (!bearer) return refuse(401, 'invalid_request', 'The Bearer credential is empty; send Authorization: Bearer <token or API key>.');
      if (WHITESPACE.test(bearer)) {
        return refuse(401, 'invalid_request', 'The Bearer credential must be one token without spaces; send Authorization: Bearer <token or API key>.');
      }
    }

    if (this.localMode) return this.#authenticateLocal(bearer, input.remoteAddress);

    if (bearer && looksLikeJwt(bearer)) {
      const header = input.apiKeyHeader === undefined ? input.authorization : undefined;
      const hit = this.verifier.cached(bearer);
      if (hit) return this.#fromVerification(this.#remember(header, hit));
      const generation = this.verifier.generation;
      return this.verifier.verify(bearer).then((v) => this.#fromVerification(this.#remember(header, v, generation)));
    }
    const key = bearer ?? apiKey;
    if (!key) return refuse(401, undefined, 'Authentication required: send Authorization: Bearer <token> (or an API key in X-API-Key).');
    const match = this.registry.matchApiKey(key);
    if (!match) return refuse(401, 'invalid_token', 'The API key is not recognised; check the key, or ask an admin to add its sha256 hash to your agent in agents.d.');
    const agent = match.owner;
    return { ok: true, caller: { agentId: agent.id, principal: match.ref, agent, user: agent.owner, chain: [agent.id], via: 'apikey' } };
  }

  /** Remember a verified bearer by its header (a verification finished after a reload of the issuers is not kept). */
  #remember(header: string | undefined, v: JwtVerification, generation = this.verifier.generation): JwtVerification {
    if (header === undefined || !v.ok || generation !== this.verifier.generation || typeof v.claims.exp !== 'number') return v;
    if (this.#knownHeaders.size >= MAX_KNOWN_HEADERS) this.#knownHeaders.clear();
    this.#knownHeaders.set(header, { verification: v, expiresAtMs: v.claims.exp * 1000, generation });
    return v;
  }

  /** Loopback callers become `local`; a gateway-minted (delegated) token still narrows them to its child agent. */
  #authenticateLocal(bearer: string | undefined, remoteAddress: string | undefined): AuthOutcome | Promise<AuthOutcome> {
    if (!isLoopback(remoteAddress)) {
      return refuse(
        403,
        'access_denied',
        'This gateway runs without auth and accepts only loopback callers; configure auth.issuers in gateway.yaml or API keys in agents.d to accept remote callers.',
      );
    }
    if (bearer && looksLikeJwt(bearer)) {
      const decide = (v: JwtVerification): AuthOutcome | Promise<AuthOutcome> => (v.ok || v.error !== 'wrong_issuer' ? this.#fromVerification(v) : this.#localCaller());
      const hit = this.verifier.cached(bearer);
      return hit ? decide(hit) : this.verifier.verify(bearer).then(decide);
    }
    return this.#localCaller();
  }

  #localCaller(): AuthOutcome {
    const agent = this.registry.get(LOCAL_AGENT_ID);
    return { ok: true, caller: { agentId: LOCAL_AGENT_ID, principal: LOCAL_PRINCIPAL, agent, user: agent?.owner, chain: [LOCAL_AGENT_ID], via: 'local' } };
  }

  #fromVerification(v: JwtVerification): AuthOutcome | Promise<AuthOutcome> {
    if (!v.ok) return refuse(401, 'invalid_token', `The bearer token was refused: ${v.message}.`, v.error);
    const claims = v.claims as Readonly<Record<string, unknown>>;
    const jti = stringClaim(claims, 'jti');
    // Revocation is asked on every request, before anything remembered about the token is used.
    if (jti && this.#isRevoked(jti)) return refuse(401, 'invalid_token', 'The bearer token was revoked by an admin; request a new token.', 'revoked');
    if (v.local) {
      const loading = jti ? this.#tokenKnown(jti) : undefined;
      return loading ? loading.then(() => this.#fromDelegatedToken(claims)) : this.#fromDelegatedToken(claims);
    }
    const generation = this.registry.generation;
    const known = this.#derived.get(v);
    if (known && known.generation === generation) return known.outcome;
    const outcome = this.#fromExternalToken(v, claims);
    this.#derived.set(v, { generation, outcome });
    return outcome;
  }

  /** An external token's agent (by its claims) and the Caller it makes; frozen, as it is shared by the token's requests. */
  #fromExternalToken(v: JwtVerification & { ok: true }, claims: Readonly<Record<string, unknown>>): AuthOutcome {
    const match = this.registry.findByClaims(claims);
    if (!match) {
      const named = (['sub', 'client_id', 'azp'] as const)
        .map((k) => (typeof claims[k] === 'string' ? `${k}=${shown(claims[k])}` : undefined))
        .filter(Boolean)
        .join(', ');
      return refuse(403, 'access_denied', `No agent in agents.d matches this token (${named}, iss=${v.issuer}); an admin can add these claims to an agent's credentials.jwt.`);
    }
    const { agent } = match;
    const caller: Caller = {
      agentId: agent.id,
      principal: tokenPrincipal(claims, false),
      agent,
      user: userOfExternalToken(claims, match),
      chain: Object.freeze([agent.id]) as string[],
      claims,
      jti: stringClaim(claims, 'jti'),
      via: 'jwt',
    };
    return { ok: true, caller: Object.freeze(caller) };
  }

  /**
   * A token the gateway minted for a sub-agent: `sub` is the child agent id, `act` the chain of ancestor agent ids,
   * `wf` the workflow, `depth` the hops below the root, `scope` space-separated tool globs, `usr` the acting-for user.
   */
  #fromDelegatedToken(claims: Readonly<Record<string, unknown>>): AuthOutcome {
    const agentId = stringClaim(claims, 'sub');
    const agent: AgentManifest | undefined = agentId ? this.registry.get(agentId) : undefined;
    if (!agentId || !agent) {
      return refuse(403, 'access_denied', `The delegated token names agent ${agentId ?? '(none)'}, which is not in agents.d any more; request a new token.`);
    }
    const chain = [...actChain(claims), agentId];
    const scope = stringClaim(claims, 'scope')?.split(/\s+/).filter(Boolean);
    const depth = typeof claims.depth === 'number' ? claims.depth : chain.length - 1;
    const user = stringClaim(claims, 'usr') ?? this.registry.get(chain[0]!)?.owner ?? agent.owner;
    return {
      ok: true,
      caller: {
        agentId,
        principal: tokenPrincipal(claims, true),
        agent,
        user,
        chain,
        claims,
        workflowId: stringClaim(claims, 'wf'),
        scope,
        jti: stringClaim(claims, 'jti'),
        depth,
        via: 'delegated',
      },
    };
  }
}

/**
 * HTTP face of delegation: `POST /oauth/token` (RFC 8693 token exchange), `GET /.well-known/jwks.json`, and
 * `POST /admin/api/tokens/{jti}/revoke`. Mount after the /admin/api auth middleware so the admin route is protected.
 */
import express, { type Express, type Request, type Response } from 'express';
import type { Gateway } from '../gateway/gateway.js';
import type { Authenticator } from '../identity/authenticate.js';
import { exchange, isExchangeFailure, TOKEN_EXCHANGE_GRANT, type DelegationDeps } from '../identity/delegation.js';
import { latestSessionWorkflow, type DelegationRuntime } from '../identity/delegation-runtime.js';

export interface MountDelegationDeps {
  delegation: DelegationRuntime;
  authenticator: Pick<Authenticator, 'authenticate' | 'registry'>;
  gateway: Pick<Gateway, 'workflows' | 'sinks' | 'sessions'>;
  /** The gateway's public URL (issuer of minted tokens); read per request, as it is known only once the port is bound. */
  publicUrl: () => string;
  localMode: () => boolean;
}

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

function oauthError(res: Response, status: number, error: string, description: string): void {
  res.status(status).set(NO_STORE).json({ error, error_description: description });
}

function field(body: unknown, name: string): string | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * How a token exchange that threw is answered: shared state that did not answer (the live-children count in Redis)
 * is a 503 to retry, as RFC 6749 `temporarily_unavailable`; anything else a 500. Its message already says what to do.
 */
export function mintError(err: unknown): { status: 500 | 503; error: 'server_error' | 'temporarily_unavailable'; description: string } {
  const message = err instanceof Error ? err.message : String(err);
  if ((err as { code?: unknown } | undefined)?.code === 'REDIS_UNAVAILABLE') return { status: 503, error: 'temporarily_unavailable', description: `The token could not be minted: ${message}` };
  return { status: 500, error: 'server_error', description: `The token could not be minted: ${message}; retry, and check the gateway log if it persists` };
}

export function mountDelegation(app: Express, deps: MountDelegationDeps): void {
  const { delegation, authenticator, gateway } = deps;
  const exchangeDeps: DelegationDeps = {
    authenticate: (input) => authenticator.authenticate(input),
    agents: authenticator.registry,
    sign: (claims) => delegation.keys.sign(claims),
    store: delegation.store,
    limits: delegation.limits,
    workflows: gateway.workflows,
    issuer: deps.publicUrl,
    maxTokenSeconds: delegation.maxTokenSeconds,
    sinks: () => gateway.sinks,
    currentWorkflowOf: (caller) => latestSessionWorkflow(gateway.sessions.values(), caller),
    localMode: deps.localMode,
  };

  app.post('/oauth/token', express.urlencoded({ extended: false, limit: '64kb' }), async (req: Request, res: Response) => {
    if (!req.is('application/x-www-form-urlencoded')) {
      return oauthError(res, 400, 'invalid_request', 'Send the token request as application/x-www-form-urlencoded (RFC 6749 §4.1.3)');
    }
    const grant = field(req.body, 'grant_type');
    if (grant !== TOKEN_EXCHANGE_GRANT) {
      const error = grant ? 'unsupported_grant_type' : 'invalid_request';
      return oauthError(res, 400, error, `grant_type must be ${TOKEN_EXCHANGE_GRANT}; this endpoint only delegates to sub-agents`);
    }
    const requested = field(req.body, 'requested_token_type');
    if (requested && requested !== 'urn:ietf:params:oauth:token-type:access_token') {
      return oauthError(res, 400, 'invalid_request', 'requested_token_type must be urn:ietf:params:oauth:token-type:access_token (or left out)');
    }
    try {
      const result = await exchange(
        {
          subjectToken: field(req.body, 'subject_token'),
          subjectTokenType: field(req.body, 'subject_token_type'),
          audience: field(req.body, 'audience'),
          scope: field(req.body, 'scope'),
          budget: field(req.body, 'budget'),
          remoteAddress: req.socket.remoteAddress,
        },
        exchangeDeps,
      );
      if (isExchangeFailure(result)) return oauthError(res, result.status, result.error, result.error_description);
      res.status(200).set(NO_STORE).json(result);
    } catch (err) {
      const failed = mintError(err);
      if (failed.status === 503) res.set('retry-after', '1');
      oauthError(res, failed.status, failed.error, failed.description);
    }
  });

  app.get('/.well-known/jwks.json', (_req, res) => {
    res.set('cache-control', 'public, max-age=60').json(delegation.keys.publicJwks());
  });

  app.post('/admin/api/tokens/:jti/revoke', async (req: Request, res: Response) => {
    const jti = String(req.params.jti);
    let done: Awaited<ReturnType<DelegationRuntime['revoke']>>;
    try {
      done = await delegation.revoke(jti);
    } catch (err) {
      return res.status(500).json({ error: 'internal', message: `Revoking ${jti} failed: ${(err as Error).message}; retry, and check the gateway log if it persists` });
    }
    if (!done) {
      return res.status(404).json({ error: 'not_found', message: `No token with jti ${jti} was minted here or delegated from; check the jti (the token's "jti" claim)` });
    }
    res.json(done);
  });

  app.get('/admin/api/tokens/:jti', async (req: Request, res: Response) => {
    const jti = String(req.params.jti);
    const token = delegation.store.get(jti);
    if (!token) return res.status(404).json({ error: 'not_found', message: `No token with jti ${jti} was minted here` });
    const minted = await delegation.store.descendants(jti);
    res.json({ ...token, revoked: delegation.isRevoked(jti), minted: minted.map((d) => ({ jti: d.jti, agent: d.agent, revoked: delegation.isRevoked(d.jti) })) });
  });
}

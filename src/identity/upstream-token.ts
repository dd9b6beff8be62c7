/**
 * `identity: jwt` upstreams: the gateway mints a short-lived token (audience = the server's name) that states
 * which agent acts, for which user, in which workflow — so the upstream knows who acts without ever seeing
 * the agent's own credential. One token per (session, server), reused until it nears expiry.
 */
import type { JWTPayload } from 'jose';
import type { Caller } from '../gateway/types.js';

const LIFETIME_SECONDS = 300;
const RENEW_BEFORE_MS = 60_000;

export interface UpstreamTokenMinter {
  /** Authorization header value for a call to `server`, or a promise of it on a cache miss. */
  (caller: Caller, server: string, workflowId: string, sessionKey: string): string | Promise<string>;
}

export function createUpstreamTokenMinter(sign: (claims: JWTPayload) => Promise<string>, issuer: () => string, now = Date.now): UpstreamTokenMinter {
  const cache = new Map<string, { header: string; expiresAt: number }>();
  return (caller, server, workflowId, sessionKey) => {
    const key = `${sessionKey}\n${server}\n${workflowId}`;
    const hit = cache.get(key);
    const t = now();
    if (hit && hit.expiresAt - RENEW_BEFORE_MS > t) return hit.header;
    if (cache.size > 10_000) for (const [k, v] of cache) if (v.expiresAt <= t) cache.delete(k);
    const iat = Math.floor(t / 1000);
    return sign({
      iss: issuer(),
      aud: server,
      sub: caller.agentId,
      ...(caller.user ? { usr: caller.user } : {}),
      ...(caller.chain.length > 1 ? { chain: caller.chain } : {}),
      wf: workflowId,
      iat,
      exp: iat + LIFETIME_SECONDS,
    }).then((token) => {
      const header = `Bearer ${token}`;
      cache.set(key, { header, expiresAt: (iat + LIFETIME_SECONDS) * 1000 });
      return header;
    });
  };
}

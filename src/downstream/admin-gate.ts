/**
 * Who may use /admin/api. A request is never trusted by its source address alone once the gateway has identities:
 * the gateway itself can be made to send requests (an A2A card naming its own URL), and they come from loopback.
 * With admin.tokens set, every request needs one of them. Without, the admin API answers loopback callers only in
 * local mode (no issuer, no API key), and is disabled otherwise.
 */
import type { RequestHandler } from 'express';
import { adminTokenCheck } from './auth-http.js';
import { isLoopback } from '../util/net.js';
import { adminName } from './console-session.js';

export interface AdminGateOptions {
  /** gateway.yaml admin.tokens (sha256 references). */
  tokens: readonly string[];
  /** No issuer and no API key configured (re-read per request: agents.d may add keys at run time). */
  localMode: () => boolean;
}

export const ADMIN_DISABLED_MESSAGE =
  'The admin API is disabled: the gateway has identities (API keys or issuers), so it needs an admin token; set admin.tokens in gateway.yaml to the sha256 of one.';

export function adminGate(opts: AdminGateOptions): RequestHandler {
  const tokenOk = adminTokenCheck(opts.tokens);
  return (req, res, next) => {
    // A signed-in console session (checked, CSRF included, by ConsoleSessions.gate in front of this one).
    if (res.locals.consoleSession === true) return next();
    if (opts.tokens.length > 0) {
      if (tokenOk(req.headers.authorization)) {
        res.locals.admin = adminName(/^Bearer[ \t]+(\S+)/i.exec(req.headers.authorization!.trim())![1]!);
        return next();
      }
      res.status(401).set('www-authenticate', 'Bearer realm="switchyard-admin"').json({ error: 'unauthenticated', message: 'The admin API needs Authorization: Bearer <admin token> (gateway.yaml admin.tokens holds its sha256).' });
      return;
    }
    if (!opts.localMode()) {
      res.status(403).json({ error: 'admin_disabled', message: ADMIN_DISABLED_MESSAGE });
      return;
    }
    if (isLoopback(req.socket.remoteAddress)) {
      res.locals.admin = 'admin:local';
      return next();
    }
    res.status(403).json({ error: 'forbidden', message: 'Without admin.tokens the admin API answers loopback callers only; set admin.tokens in gateway.yaml to reach it from elsewhere.' });
  };
}

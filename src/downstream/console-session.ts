/**
 * Console sign-in: an admin token is exchanged once for a session cookie (HttpOnly, SameSite=Strict) and a CSRF
 * token the page sends back on every write. The token itself never stays in the browser. Sessions live in a
 * ConsoleSessionStore (PostgreSQL with store.postgres: valid, signed out and expired on every replica).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { adminTokenCheck } from './auth-http.js';
import { isLoopback } from '../util/net.js';
import { MemoryConsoleSessions, type ConsoleSessionRecord, type ConsoleSessionStore } from '../stores/console-sessions.js';

export const CONSOLE_COOKIE = 'switchyard_console';
const SESSION_MS = 12 * 60 * 60 * 1000;

/** `admin`: who signed in, as the trail names them (the admin token's sha256 prefix). */
export type ConsoleSession = ConsoleSessionRecord;

export interface ConsoleSessionOptions {
  tokens: readonly string[];
  localMode: () => boolean;
  /** Mark cookies Secure (the console is served over https). */
  secure: () => boolean;
  now?: () => number;
  /** Where sessions are kept (default: this process's memory). */
  store?: ConsoleSessionStore;
  log?: Pick<Logger, 'error'>;
}

/** The store keeps the cookie id's hash: someone who can read it cannot sign in with what they read. */
const idHash = (id: string): string => createHash('sha256').update(id).digest('base64url');

/** The shared store did not answer: said clearly, never taken as "signed out". */
class StoreDown extends Error {}

/** How the trail names an admin token: never the token, a prefix of its hash. */
export function adminName(token: string): string {
  return `admin:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

function cookieOf(req: Request): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === CONSOLE_COOKIE) return v.join('=');
  }
  return undefined;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleSessions {
  private readonly sessions: ConsoleSessionStore;
  private readonly tokenOk: (authorization: string | undefined) => boolean;
  private readonly now: () => number;

  constructor(private readonly opts: ConsoleSessionOptions) {
    this.tokenOk = adminTokenCheck(opts.tokens);
    this.now = opts.now ?? Date.now;
    this.sessions = opts.store ?? new MemoryConsoleSessions();
  }

  /** Run a store operation; a store that does not answer becomes StoreDown (answered 503). */
  private async stored<T>(op: () => T | Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.opts.log?.error({ err: (err as Error).message }, `console sessions in ${this.sessions.where} cannot be read or written; console sign-in answers 503 until it answers (Authorization: Bearer still works)`);
      throw new StoreDown();
    }
  }

  private unavailable(res: Response): void {
    res.status(503).set('retry-after', '1').json({ error: 'unavailable', message: `Console sessions are kept in ${this.sessions.where}, which does not answer; retry shortly, or send the admin token as Authorization: Bearer.` });
  }

  /** The live session a request's cookie names, if any. */
  async of(req: Request): Promise<ConsoleSession | undefined> {
    const id = cookieOf(req);
    if (!id) return undefined;
    return this.stored(() => this.sessions.get(idHash(id), this.now()));
  }

  /** `of`, answering 503 itself when the store is down (then `false`). */
  private async sessionOr503(req: Request, res: Response): Promise<ConsoleSession | undefined | false> {
    try {
      return await this.of(req);
    } catch (err) {
      if (!(err instanceof StoreDown)) throw err;
      this.unavailable(res);
      return false;
    }
  }

  /** A write from a cookie session must carry its CSRF token in X-CSRF-Token. */
  csrfOk(req: Request, s: ConsoleSession): boolean {
    const sent = req.headers['x-csrf-token'];
    return typeof sent === 'string' && same(sent, s.csrf);
  }

  private async signIn(token: string, req: Request): Promise<{ id: string; session: ConsoleSession } | undefined> {
    const local = this.opts.tokens.length === 0 && this.opts.localMode() && isLoopback(req.socket.remoteAddress);
    if (!local && !(token && this.tokenOk(`Bearer ${token}`))) return undefined;
    const id = randomBytes(32).toString('base64url');
    const session = { csrf: randomBytes(24).toString('base64url'), admin: local && !token ? 'admin:local' : adminName(token), expiresAt: this.now() + SESSION_MS };
    await this.stored(() => this.sessions.put(idHash(id), session));
    return { id, session };
  }

  private cookie(value: string, maxAgeSeconds: number): string {
    return `${CONSOLE_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${this.opts.secure() ? '; Secure' : ''}`;
  }

  /** POST /ui/api/session {token} signs in; GET says who is signed in (and the CSRF token); DELETE signs out. */
  router(): Router {
    const router = Router();
    router.post('/session', express.json({ limit: '4kb' }), async (req, res) => {
      const token = (req.body as { token?: unknown } | undefined)?.token;
      let started: Awaited<ReturnType<ConsoleSessions['signIn']>>;
      try {
        started = await this.signIn(typeof token === 'string' ? token.trim() : '', req);
      } catch (err) {
        if (err instanceof StoreDown) return this.unavailable(res);
        throw err;
      }
      if (!started) {
        res.status(401).json({ error: 'unauthenticated', message: 'That is not an admin token of this gateway (gateway.yaml admin.tokens holds their sha256); check it and sign in again.' });
        return;
      }
      res.set('set-cookie', this.cookie(started.id, SESSION_MS / 1000)).set('cache-control', 'no-store').json({ admin: started.session.admin, csrf: started.session.csrf });
    });
    router.get('/session', async (req, res) => {
      res.set('cache-control', 'no-store');
      const s = await this.sessionOr503(req, res);
      if (s === false) return;
      if (!s) return void res.status(401).json({ error: 'unauthenticated', message: 'Not signed in: sign in with an admin token.' });
      res.json({ admin: s.admin, csrf: s.csrf });
    });
    router.delete('/session', async (req, res) => {
      const s = await this.sessionOr503(req, res);
      if (s === false) return;
      if (s && !this.csrfOk(req, s)) return void res.status(403).json({ error: 'csrf', message: 'Sign-out needs the X-CSRF-Token header of this session; reload the console.' });
      const id = cookieOf(req);
      if (id && s) {
        try {
          await this.stored(() => this.sessions.delete(idHash(id)));
        } catch {
          return this.unavailable(res);
        }
      }
      res.set('set-cookie', this.cookie('', 0)).status(204).end();
    });
    router.use((err: unknown, _req: Request, res: express.Response, next: express.NextFunction) => {
      if (res.headersSent) return next(err);
      res.status(400).json({ error: 'bad_request', message: 'Send {"token": "<admin token>"} as JSON.' });
    });
    return router;
  }

  /** In front of the admin gate: a signed-in console request passes (writes only with the CSRF token). */
  gate(): RequestHandler {
    return async (req, res, next) => {
      if (req.headers.authorization) return next();
      const s = await this.sessionOr503(req, res);
      if (s === false) return;
      if (!s) return next();
      const write = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS';
      if (write && !this.csrfOk(req, s)) {
        res.status(403).json({ error: 'csrf', message: 'A console write needs the X-CSRF-Token header of this session; reload the console and try again.' });
        return;
      }
      res.locals.admin = s.admin;
      res.locals.consoleSession = true;
      next();
    };
  }
}

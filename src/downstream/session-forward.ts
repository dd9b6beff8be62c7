/**
 * Legacy MCP sessions across replicas: the replica that initialized a session records it in the session directory
 * and keeps it (upstream sessions, streams, in-flight calls stay there); any other replica that gets a request for
 * it authenticates the caller itself, checks the caller is the session's principal, and forwards the request to the
 * holder, streaming the answer back. A holder that is gone means 404, so the client starts a new session
 * (docs/decisions/0035-sessions-owned-and-forwarded.md).
 */
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { ClientSession } from '../gateway/client-session.js';
import type { Caller } from '../gateway/types.js';
import type { SessionDirectory } from '../stores/sessions.js';

/** Set on a forwarded request: the holder serves it or answers 404, never forwards it again. */
export const HOP_HEADER = 'x-switchyard-forwarded-by';
const HEARTBEAT_MS = 2000;
/** A replica is taken for gone when it missed this many heartbeats. */
const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_MS;
const CONNECT_TIMEOUT_MS = 2000;
/** How long a found holder is reused without asking Redis again: a holder gone meanwhile still fails to connect (404). */
const ROUTE_TTL_MS = 2000;
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Connection-level headers a proxy must not pass on (RFC 9110 §7.6.1), plus the length it sets itself. */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', HOP_HEADER]);

/** Requests that belong to one replica (a 2026-07-28 call held there for the client's input), sent on to it. */
export interface ReplicaForwarder {
  /** This replica's id, as the session directory names it. */
  readonly replicaId: string;
  /** Whether the request may be forwarded (it was not forwarded already). */
  mayForward(req: IncomingMessage): boolean;
  /** Proxy the request to `replica`, streaming its answer back; `gone` answers instead when the replica is not there. */
  toReplica(req: IncomingMessage, res: ServerResponse, replica: string, body: Buffer, gone: () => void): Promise<void>;
}

/** What the MCP adapter asks of session sharing. */
export interface RemoteSessions extends ReplicaForwarder {
  /** Record a new session as held here; false when it must be refused (directory down and failMode closed). */
  claim(cs: ClientSession): Promise<boolean>;
  /** Serve a request for a session held elsewhere: forwarded to its holder, or 404 as for an unknown session. */
  forward(req: IncomingMessage, res: ServerResponse, caller: Caller, sessionId: string, body?: Buffer): Promise<void>;
}

export interface SessionSharingOptions {
  directory: SessionDirectory;
  log: Logger;
  failMode: 'closed' | 'open';
  /** sessions.idleSeconds in ms: records are renewed well within it while the session lives here. */
  idleMs: number;
}

const digest = (principal: string): string => createHash('sha256').update(principal).digest('base64url');

export class SessionSharing implements RemoteSessions {
  private readonly held = new Map<string, string>();
  private readonly ttlMs: number;
  private readonly renewEveryMs: number;
  private heartbeat?: NodeJS.Timeout;
  private renewal?: NodeJS.Timeout;
  private url?: string;
  private readonly pending = new Set<Promise<unknown>>();
  /** session id → its holder, principal digest and address, found recently. */
  private readonly routes = new LRUCache<string, { replica: string; principal: string; url: string }>({ max: 10_000, ttl: ROUTE_TTL_MS });
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

  constructor(private readonly opts: SessionSharingOptions) {
    this.renewEveryMs = Math.max(1000, Math.min(60_000, Math.floor(opts.idleMs / 3)));
    this.ttlMs = 3 * this.renewEveryMs;
  }

  get replicaId(): string {
    return this.opts.directory.replicaId;
  }

  /** Advertise this replica at `url` and keep its heartbeat and its sessions' records fresh. */
  start(url: string): void {
    this.url = url;
    void this.beat();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.renewal = setInterval(() => void this.renew(), this.renewEveryMs);
    this.renewal.unref();
    this.opts.log.info({ replica: this.replicaId, advertiseUrl: url }, `sessions are shared with the other replicas; they forward this replica's sessions to ${url}`);
  }

  /** Called when Redis is back: records that lapsed meanwhile are written again at once. */
  resync(): void {
    void this.beat();
    void this.renew();
  }

  private async beat(): Promise<void> {
    if (!this.url) return;
    try {
      await this.opts.directory.advertise(this.url, HEARTBEAT_TTL_MS);
    } catch {
      // The directory's own health report says Redis is down, once; no line per missed beat.
    }
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    try {
      await this.opts.directory.claim([...this.held].map(([sessionId, principal]) => ({ sessionId, principal })), this.ttlMs);
    } catch {
      // Renewal runs again on the next tick and on reconnect.
    }
  }

  async claim(cs: ClientSession): Promise<boolean> {
    const principal = digest(cs.caller.principal);
    try {
      await this.opts.directory.claim([{ sessionId: cs.id, principal }], this.ttlMs);
    } catch (err) {
      if (this.opts.failMode === 'closed') {
        this.opts.log.error({ session: cs.id, err: (err as Error).message }, 'session refused: the session directory (Redis) is unreachable and state.failMode is closed; the session starts once Redis is back');
        return false;
      }
      this.opts.log.warn({ session: cs.id, err: (err as Error).message }, 'session directory (Redis) unreachable: the session is served by this replica alone until Redis is back (state.failMode open)');
    }
    this.held.set(cs.id, principal);
    cs.onClose(() => {
      this.held.delete(cs.id);
      this.track(Promise.resolve(this.opts.directory.release(cs.id)).catch(() => undefined)); // a record left behind lapses with its TTL
    });
    return true;
  }

  mayForward(req: IncomingMessage): boolean {
    return req.headers[HOP_HEADER] === undefined;
  }

  async forward(req: IncomingMessage, res: ServerResponse, caller: Caller, sessionId: string, body?: Buffer): Promise<void> {
    if (!SESSION_ID.test(sessionId)) return notFound(res);
    const principal = digest(caller.principal);
    let route = this.routes.get(sessionId);
    if (!route) {
      let target: string | undefined;
      let replica: string;
      try {
        const record = await this.opts.directory.lookup(sessionId);
        if (!record || record.replica === this.replicaId) return notFound(res);
        replica = record.replica;
        // Checked before the address is asked for, so a stranger's request costs one lookup and learns nothing.
        if (record.principal !== principal) return notFound(res);
        target = await this.opts.directory.addressOf(replica);
      } catch (err) {
        this.opts.log.warn({ session: sessionId, err: (err as Error).message }, 'session directory (Redis) unreachable: cannot tell which replica holds this session');
        return sendRpcError(res, 503, -32000, 'Service Unavailable: the session directory is unreachable, so the replica holding this session cannot be found. Retry shortly.');
      }
      if (!target) {
        this.opts.log.info({ session: sessionId, replica }, 'session held by a replica that is gone (no heartbeat): answered 404 so the client starts a new session');
        return notFound(res);
      }
      route = { replica, principal, url: target };
      this.routes.set(sessionId, route);
    }
    // A session belongs to the exact credential that opened it, on every replica: another one is told it does not exist.
    if (route.principal !== principal) return notFound(res);
    const forget = () => this.routes.delete(sessionId);
    await this.proxy(req, res, new URL(req.url ?? '/mcp', route.url + '/'), { session: sessionId }, route.replica, body, forget, () => {
      forget();
      notFound(res);
    });
  }

  async toReplica(req: IncomingMessage, res: ServerResponse, replica: string, body: Buffer, gone: () => void): Promise<void> {
    let target: string | undefined;
    try {
      target = replica === this.replicaId ? undefined : await this.opts.directory.addressOf(replica);
    } catch (err) {
      this.opts.log.warn({ replica, err: (err as Error).message }, 'session directory (Redis) unreachable: cannot tell where the replica holding this call is');
      return sendRpcError(res, 503, -32000, 'Service Unavailable: the session directory is unreachable, so the replica holding this call cannot be found. Retry shortly.');
    }
    if (!target) {
      this.opts.log.info({ replica }, 'a call held by a replica that is gone (no heartbeat): its retry is refused so the client starts the request again');
      return gone();
    }
    await this.proxy(req, res, new URL(req.url ?? '/mcp', target + '/'), { call: 'held' }, replica, body, undefined, gone);
  }

  /** `on404`: the holder answered 404; `unreachable`: it did not answer (the answer is the caller's to send). */
  private proxy(req: IncomingMessage, res: ServerResponse, url: URL, what: Record<string, string>, replica: string, body: Buffer | undefined, on404: (() => void) | undefined, unreachable: () => void): Promise<void> {
    const headers: Record<string, string | string[]> = forwardedHeaders(req.headers);
    headers[HOP_HEADER] = this.replicaId;
    if (body) headers['content-length'] = String(body.length);
    const forwardedFor = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = [forwardedFor, req.socket.remoteAddress].filter(Boolean).join(', ');
    const secure = url.protocol === 'https:';
    return new Promise<void>((resolve) => {
      const upstream = (secure ? https : http).request(url, { method: req.method, headers, agent: secure ? this.agents.https : this.agents.http });
      const connectTimer = setTimeout(() => upstream.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      upstream.once('socket', (socket) => {
        if (!socket.connecting) clearTimeout(connectTimer);
        else socket.once('connect', () => clearTimeout(connectTimer));
      });
      upstream.on('response', (answer) => {
        clearTimeout(connectTimer);
        if (answer.statusCode === 404) on404?.(); // ended on the holder: ask the directory next time
        res.writeHead(answer.statusCode ?? 502, forwardedHeaders(answer.headers));
        // SSE must reach the client as it is written, not when a buffer fills; pipe keeps back-pressure.
        res.flushHeaders();
        answer.pipe(res);
        answer.once('end', () => resolve());
        // The holder went away mid-answer: the client sees the stream break, as it would from the holder itself.
        answer.once('error', () => {
          res.destroy();
          resolve();
        });
      });
      upstream.on('error', (err) => {
        clearTimeout(connectTimer);
        if (!res.headersSent) {
          this.opts.log.warn({ ...what, replica, target: url.origin, err: err.message }, 'session' in what ? 'the replica holding this session did not answer: answered 404 so the client starts a new session' : 'the replica holding this call did not answer: its retry is refused so the client starts the request again');
          unreachable();
        } else res.destroy();
        resolve();
      });
      // The client leaving (a GET stream closed) ends the forwarded request, so the holder sees it leave too.
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
        resolve();
      });
      this.opts.log.debug({ ...what, replica, method: req.method }, 'session' in what ? 'session request forwarded to its replica' : 'held call retry forwarded to its replica');
      upstream.end(body);
    });
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Stop the heartbeat, let releases of closed sessions reach the directory, and withdraw this replica. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.renewal);
    await Promise.allSettled([...this.pending]);
    try {
      await this.opts.directory.withdraw();
    } catch {
      // Unreachable: the heartbeat lapses on its own.
    }
    this.agents.http.destroy();
    this.agents.https.destroy();
    await this.opts.directory.close();
  }
}

function forwardedHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !NOT_FORWARDED.has(k)) out[k] = v;
  return out;
}


function sendRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  const text = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Exactly the answer for an unknown session, so nothing tells a stranger the id exists. */
export function notFound(res: ServerResponse): void {
  sendRpcError(res, 404, -32001, 'Session not found: it ended or never existed. Initialize a new session.');
}

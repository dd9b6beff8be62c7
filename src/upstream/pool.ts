/**
 * The supervisor of one upstream server: hands out initialized sessions (one per downstream session, or one
 * shared), restarts crashed ones with exponential backoff, closes idle per-client ones, and keeps a health view
 * for /readyz. A server known to be down is refused at once and rechecked in the background until it is back.
 */
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import { A2aTransport } from './a2a.js';
import { memoryA2aContext, type A2aContext } from './a2a-context.js';
import { LegacySseTransport } from './sse.js';
import { StdioTransport } from './stdio.js';
import { StreamableHttpTransport } from './http.js';
import { asUpstreamError, startFailureLine, stoppedError, UpstreamError } from './errors.js';
import { UpstreamSession, type ClientInit, type SessionEvents } from './session.js';
import type { UpstreamTransport } from './transport.js';

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** Background rechecks of a down server: quick at first, then at most this far apart. */
const RECHECK_MAX_MS = 5_000;
/** A required server that is up is checked this often. */
const HEALTH_INTERVAL_MS = 30_000;
const SHARED_KEY = '*shared*';
const PROBE_INIT: ClientInit = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'switchyard-probe', version: '0' } };

export function createTransport(m: ServerManifest, log: Logger, a2a: A2aContext = memoryA2aContext()): UpstreamTransport {
  switch (m.transport) {
    case 'stdio':
      return new StdioTransport(m, log);
    case 'http':
      return new StreamableHttpTransport(m, log);
    case 'sse':
      return new LegacySseTransport(m);
    case 'a2a':
      return new A2aTransport(m, log, a2a);
    default:
      throw new Error(`server ${m.name}: transport '${m.transport}' is not an MCP transport`);
  }
}

interface Slot {
  session?: UpstreamSession;
  connecting?: Promise<UpstreamSession>;
  failures: number;
  notBefore: number;
  events: SessionEvents;
  lastUsed: number;
}

export interface Health {
  up: boolean;
  lastError?: string;
  checkedAt?: number;
}

export class UpstreamPool {
  readonly health: Health = { up: false };
  /** Sessions that ended on their own (each one restarts on next use) and sessions that failed to start. */
  readonly restarts = { ended: 0, failedStarts: 0 };
  private readonly slots = new Map<string, Slot>();
  private closed = false;
  /** The start failure last logged at WARN, until a session starts again. */
  private reported?: string;
  private healthListeners: Array<(h: Health) => void> = [];
  /** Set while the server is known down: calls and lists are refused at once until a recheck succeeds. */
  private downSince = 0;
  /** Why the server is down: what callers are told while it is known down. */
  private downBecause?: UpstreamError;
  private rechecks = 0;
  private checkTimer?: NodeJS.Timeout;
  private checking?: Promise<Health>;
  private readonly reaper: NodeJS.Timeout;

  constructor(readonly manifest: ServerManifest, private readonly log: Logger, private readonly a2a?: A2aContext) {
    const idleMs = this.idleMs;
    this.reaper = setInterval(() => this.reapIdle(), Math.min(60_000, Math.max(250, Math.floor(idleMs / 4))));
    this.reaper.unref();
  }

  private get idleMs(): number {
    return (this.manifest.idleSeconds ?? 600) * 1000;
  }

  /** Open upstream sessions (one per client, or the shared one). */
  get openSessions(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.session) n++;
    return n;
  }

  get name(): string {
    return this.manifest.name;
  }

  get shared(): boolean {
    return this.manifest.session === 'shared';
  }

  onHealth(fn: (h: Health) => void): void {
    this.healthListeners.push(fn);
  }

  /** The gateway is stopping: sessions ending from now on are expected, not failures. */
  stopping(): void {
    this.closed = true;
  }

  /** One WARN line saying why the upstream could not start; the same reason again (each retry, each client) is debug. */
  private reportStartFailure(err: UpstreamError): void {
    const line = startFailureLine(err, this.manifest.source.file);
    const repeated = line === this.reported;
    this.reported = line;
    this.log[repeated ? 'debug' : 'warn']({ cause: err.code }, line);
  }

  /** The server could not be started or initialized: say why once, refuse at once and recheck it in the background. */
  private markDown(failure: UpstreamError): void {
    if (this.closed) return;
    const news = this.downSince === 0;
    if (news) this.downSince = Date.now();
    this.downBecause = failure;
    this.reportStartFailure(failure);
    this.setHealth(false, failure.operator, news);
    this.scheduleCheck();
  }

  /** Listeners hear of changes, and of the first time a server is known down (even if it was never up). */
  private setHealth(up: boolean, err?: string, news = false): void {
    if (up) {
      this.downSince = 0;
      this.rechecks = 0;
    }
    const changed = this.health.up !== up || news;
    this.health.up = up;
    this.health.lastError = err;
    this.health.checkedAt = Date.now();
    if (changed) for (const fn of this.healthListeners) fn(this.health);
  }

  /** The session serving downstream session `clientKey` (ignored for shared servers). */
  acquire(clientKey: string, init: ClientInit, events: SessionEvents): Promise<UpstreamSession> {
    if (this.closed) return Promise.reject(stoppedError(this.name));
    const key = this.shared ? SHARED_KEY : clientKey;
    let slot = this.slots.get(key);
    if (slot?.session?.state === 'ready') {
      slot.lastUsed = Date.now();
      return Promise.resolve(slot.session);
    }
    if (this.downSince !== 0) {
      return Promise.reject(this.downBecause ?? new UpstreamError(this.name, 'down', 'it is down'));
    }
    if (!slot) {
      slot = { failures: 0, notBefore: 0, events, lastUsed: Date.now() };
      this.slots.set(key, slot);
    }
    slot.connecting ??= this.connect(key, slot, init).finally(() => {
      if (slot) slot.connecting = undefined;
    });
    return slot.connecting;
  }

  /** The live session for a client, if any, without connecting. */
  peek(clientKey: string): UpstreamSession | undefined {
    const slot = this.slots.get(this.shared ? SHARED_KEY : clientKey);
    const s = slot?.session;
    if (s?.state !== 'ready') return undefined;
    slot!.lastUsed = Date.now();
    return s;
  }

  /** Why the server is refused at once right now (known down, rechecked in the background); for relays that use no session. */
  downReason(): UpstreamError | undefined {
    if (this.downSince === 0) return undefined;
    return this.downBecause ?? new UpstreamError(this.name, 'down', 'it is down');
  }

  /** Whether a session for this client is being connected right now. */
  isConnecting(clientKey: string): boolean {
    return this.slots.get(this.shared ? SHARED_KEY : clientKey)?.connecting !== undefined;
  }

  /** Close per-client sessions unused for idleSeconds with no call in flight. */
  reapIdle(now = Date.now()): void {
    if (this.shared) return;
    const cutoff = now - this.idleMs;
    for (const [key, slot] of this.slots) {
      if (slot.connecting || slot.lastUsed >= cutoff || (slot.session && slot.session.inFlight > 0)) continue;
      this.slots.delete(key);
      if (slot.session) {
        this.log.debug({ client: key }, 'idle upstream session closed');
        void slot.session.close().catch(() => {});
      }
    }
  }

  private async connect(key: string, slot: Slot, init: ClientInit): Promise<UpstreamSession> {
    const wait = slot.notBefore - Date.now();
    if (wait > 0) {
      if (wait > 5000) throw new UpstreamError(this.name, 'backoff', `it failed ${slot.failures} times in a row`, { retryInS: Math.ceil(wait / 1000) });
      await new Promise((r) => setTimeout(r, wait));
    }
    const transport = createTransport(this.manifest, this.log, this.a2a);
    const events: SessionEvents = {
      onNotification: (m) => slot.events.onNotification?.(m),
      onServerRequest: (m) => slot.events.onServerRequest?.(m) ?? Promise.reject(new Error('no client to ask')),
      onClose: (cause) => {
        if (slot.session !== session) return;
        slot.session = undefined;
        if (this.closed || !cause) return;
        this.restarts.ended++;
        this.log.warn({ cause: cause.code }, `upstream '${this.name}' session ended: ${cause.operator}; it restarts with backoff on next use`);
        this.backoff(slot, cause.operator);
        slot.events.onClose?.(cause);
      },
    };
    const session = new UpstreamSession(this.manifest, transport, init, events, this.log);
    try {
      await session.connect();
    } catch (err) {
      const failure = asUpstreamError(this.name, err);
      this.restarts.failedStarts++;
      this.backoff(slot, failure.operator);
      this.markDown(failure);
      await session.close().catch(() => {});
      if (!this.closed) this.reportStartFailure(failure);
      throw failure;
    }
    if (this.closed || this.slots.get(key) !== slot) {
      await session.close();
      throw stoppedError(this.name);
    }
    slot.session = session;
    slot.lastUsed = Date.now();
    this.reported = undefined;
    slot.failures = 0;
    slot.notBefore = 0;
    this.setHealth(true);
    return session;
  }

  private backoff(slot: Slot, why: string): void {
    slot.failures += 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (slot.failures - 1));
    slot.notBefore = Date.now() + delay;
    if (this.shared || this.slots.size <= 1) this.setHealth(false, why);
  }

  /**
   * Watch the server: check it now, recheck it in the background while it is down, and check a required one
   * periodically while it is up (so /readyz tells the truth before any client connects).
   */
  monitor(): void {
    void this.check();
  }

  /** Check reachability: ping a live session if there is one, else connect a throwaway one. */
  check(): Promise<Health> {
    this.checking ??= (async () => {
      const live = [...this.slots.values()].find((s) => s.session?.state === 'ready')?.session;
      if (live && this.downSince === 0) {
        const res = await live.request('ping', undefined, { timeoutMs: this.manifest.connectTimeoutMs ?? 30_000 });
        if (!res.error || (res.error.data as { reason?: string } | undefined)?.reason === undefined) this.setHealth(true);
        else this.markDown(new UpstreamError(this.name, 'failed', 'it stopped answering', { operator: `ping failed: ${res.error.message}` }));
        return this.health;
      }
      return this.probe(PROBE_INIT);
    })().finally(() => {
      this.checking = undefined;
      if (!this.closed && this.downSince === 0 && this.manifest.required) this.scheduleCheck();
    });
    return this.checking;
  }

  private scheduleCheck(): void {
    if (this.checkTimer || this.closed) return;
    const delay = this.downSince !== 0 ? Math.min(RECHECK_MAX_MS, BACKOFF_MIN_MS * 2 ** this.rechecks++) : HEALTH_INTERVAL_MS;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      void this.check();
    }, delay);
    this.checkTimer.unref();
  }

  /** Connect and initialize once to learn whether the server is reachable (startup and /readyz). */
  async probe(init: ClientInit): Promise<Health> {
    // A throwaway session even for shared servers: the shared one must be opened by the gateway with the
    // capabilities it relays and the handlers that fan notifications out, not with the probe's empty ones.
    const session = new UpstreamSession(this.manifest, createTransport(this.manifest, this.log, this.a2a), init, {}, this.log);
    try {
      await session.connect();
      this.reported = undefined;
      this.setHealth(true);
    } catch (err) {
      this.markDown(asUpstreamError(this.name, err));
    } finally {
      await session.close().catch(() => {});
    }
    return this.health;
  }

  /** The downstream session ended: its per-client upstream session goes too. */
  async release(clientKey: string): Promise<void> {
    if (this.shared) return;
    const slot = this.slots.get(clientKey);
    this.slots.delete(clientKey);
    await slot?.session?.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(slots.map((s) => s.session?.close().catch(() => {})));
  }
}

/**
 * The supervisor of one upstream server: hands out initialized sessions (one per downstream session, or one
 * shared), restarts crashed ones with exponential backoff, and keeps a health view for /readyz.
 */
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import { A2aTransport } from './a2a.js';
import { LegacySseTransport } from './sse.js';
import { StdioTransport } from './stdio.js';
import { StreamableHttpTransport } from './http.js';
import { UpstreamSession, type ClientInit, type SessionEvents } from './session.js';
import type { UpstreamTransport } from './transport.js';

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const SHARED_KEY = '*shared*';

export class UpstreamUnavailableError extends Error {
  constructor(readonly server: string, detail: string) {
    super(detail);
    this.name = 'UpstreamUnavailableError';
  }
}

export function createTransport(m: ServerManifest, log: Logger): UpstreamTransport {
  switch (m.transport) {
    case 'stdio':
      return new StdioTransport(m, log);
    case 'http':
      return new StreamableHttpTransport(m, log);
    case 'sse':
      return new LegacySseTransport(m);
    case 'a2a':
      return new A2aTransport(m, log);
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
}

export interface Health {
  up: boolean;
  lastError?: string;
  checkedAt?: number;
}

export class UpstreamPool {
  readonly health: Health = { up: false };
  private readonly slots = new Map<string, Slot>();
  private closed = false;
  private healthListeners: Array<(h: Health) => void> = [];

  constructor(readonly manifest: ServerManifest, private readonly log: Logger) {}

  get name(): string {
    return this.manifest.name;
  }

  get shared(): boolean {
    return this.manifest.session === 'shared';
  }

  onHealth(fn: (h: Health) => void): void {
    this.healthListeners.push(fn);
  }

  private setHealth(up: boolean, err?: string): void {
    const changed = this.health.up !== up;
    this.health.up = up;
    this.health.lastError = err;
    this.health.checkedAt = Date.now();
    if (changed) for (const fn of this.healthListeners) fn(this.health);
  }

  /** The session serving downstream session `clientKey` (ignored for shared servers). */
  acquire(clientKey: string, init: ClientInit, events: SessionEvents): Promise<UpstreamSession> {
    if (this.closed) return Promise.reject(new UpstreamUnavailableError(this.name, 'server removed'));
    const key = this.shared ? SHARED_KEY : clientKey;
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { failures: 0, notBefore: 0, events };
      this.slots.set(key, slot);
    }
    if (slot.session?.state === 'ready') return Promise.resolve(slot.session);
    slot.connecting ??= this.connect(key, slot, init).finally(() => {
      if (slot) slot.connecting = undefined;
    });
    return slot.connecting;
  }

  /** The live session for a client, if any, without connecting. */
  peek(clientKey: string): UpstreamSession | undefined {
    const s = this.slots.get(this.shared ? SHARED_KEY : clientKey)?.session;
    return s?.state === 'ready' ? s : undefined;
  }

  private async connect(key: string, slot: Slot, init: ClientInit): Promise<UpstreamSession> {
    const wait = slot.notBefore - Date.now();
    if (wait > 0) {
      if (wait > 5000) throw new UpstreamUnavailableError(this.name, `restarting after ${slot.failures} failures; next attempt in ${Math.ceil(wait / 1000)} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
    const transport = createTransport(this.manifest, this.log);
    const events: SessionEvents = {
      onNotification: (m) => slot.events.onNotification?.(m),
      onServerRequest: (m) => slot.events.onServerRequest?.(m) ?? Promise.reject(new Error('no client to ask')),
      onClose: (why) => {
        if (slot.session !== session) return;
        slot.session = undefined;
        if (this.closed || why === 'closed') return;
        this.log.warn({ why }, 'upstream session ended; it restarts with backoff on next use');
        this.backoff(slot, why);
        slot.events.onClose?.(why);
      },
    };
    const session = new UpstreamSession(this.manifest, transport, init, events, this.log);
    try {
      await session.connect();
    } catch (err) {
      const msg = (err as Error).message;
      this.backoff(slot, msg);
      await session.close().catch(() => {});
      throw new UpstreamUnavailableError(this.name, msg);
    }
    if (this.closed || this.slots.get(key) !== slot) {
      await session.close();
      throw new UpstreamUnavailableError(this.name, 'server removed');
    }
    slot.session = session;
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

  /** Connect and initialize once to learn whether the server is reachable (startup and /readyz). */
  async probe(init: ClientInit): Promise<Health> {
    // A throwaway session even for shared servers: the shared one must be opened by the gateway with the
    // capabilities it relays and the handlers that fan notifications out, not with the probe's empty ones.
    const session = new UpstreamSession(this.manifest, createTransport(this.manifest, this.log), init, {}, this.log);
    try {
      await session.connect();
      this.setHealth(true);
    } catch (err) {
      this.setHealth(false, (err as Error).message);
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
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(slots.map((s) => s.session?.close().catch(() => {})));
  }
}

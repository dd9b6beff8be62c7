/**
 * The session directory: which replica holds each legacy MCP session (its upstream sessions and streams live there)
 * and where each live replica is reached. A replica that is asked about a session it does not hold forwards the
 * request to the holder named here (docs/decisions/0035-sessions-owned-and-forwarded.md).
 */
import type { Awaitable } from './types.js';

export interface SessionRecord {
  /** The replica that holds the session. */
  replica: string;
  /** Digest of the principal that opened it: only that principal's requests are forwarded. */
  principal: string;
  /** Epoch ms after which the record lapses unless the holder claims it again. */
  expires: number;
}

export interface SessionClaim {
  sessionId: string;
  principal: string;
}

export interface SessionDirectory {
  /** This replica's id (unique per process). */
  readonly replicaId: string;
  /** Record (or renew) that this replica holds these sessions for ttlMs more. */
  claim(claims: readonly SessionClaim[], ttlMs: number): Awaitable<void>;
  lookup(sessionId: string): Awaitable<SessionRecord | undefined>;
  /** Forget a session this replica held (closed or reaped); a record another replica holds is left alone. */
  release(sessionId: string): Awaitable<void>;
  /** Heartbeat: this replica is reached at `url` for ttlMs more. */
  advertise(url: string, ttlMs: number): Awaitable<void>;
  /** Where a replica is reached, or undefined once its heartbeat lapsed. */
  addressOf(replica: string): Awaitable<string | undefined>;
  /** Stop advertising this replica (orderly shutdown). */
  withdraw(): Awaitable<void>;
  health(): { ok: boolean; error?: string };
  close(): Awaitable<void>;
}

/** A directory on a shared server that comes and goes: a replica waits for it at start and is told when it changes. */
export interface SharedSessionDirectory extends SessionDirectory {
  /** Resolves true once connected, false after timeoutMs (calls then fail until it reconnects). */
  ready(timeoutMs?: number): Promise<boolean>;
  /** Told each time the server goes away and each time it is back. */
  onHealth(listener: (health: { ok: boolean; error?: string }) => void): void;
}

/**
 * Console sign-in sessions: the cookie's id (kept here only as its sha256) names who signed in, the session's CSRF
 * token and when it ends. In this process's memory by default; in PostgreSQL when store.postgres is set, so a
 * session made on one replica is valid, signed out and expired on every replica (decision 0042).
 */
import type { Awaitable } from './types.js';

export interface ConsoleSessionRecord {
  csrf: string;
  /** Who signed in, as the trail names them. */
  admin: string;
  expiresAt: number;
}

export interface ConsoleSessionStore {
  /** Where the sessions are, for messages. */
  readonly where: string;
  put(idHash: string, session: ConsoleSessionRecord): Awaitable<void>;
  /** The session, or undefined when unknown or expired at `now`. */
  get(idHash: string, now: number): Awaitable<ConsoleSessionRecord | undefined>;
  delete(idHash: string): Awaitable<void>;
}

/** At most this many sessions in memory; the oldest goes first. */
const MAX_SESSIONS = 1000;

export class MemoryConsoleSessions implements ConsoleSessionStore {
  readonly where = 'this process';
  private readonly sessions = new Map<string, ConsoleSessionRecord>();

  put(idHash: string, session: ConsoleSessionRecord): void {
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(idHash, session);
  }

  get(idHash: string, now: number): ConsoleSessionRecord | undefined {
    const s = this.sessions.get(idHash);
    if (s && s.expiresAt <= now) {
      this.sessions.delete(idHash);
      return undefined;
    }
    return s;
  }

  delete(idHash: string): void {
    this.sessions.delete(idHash);
  }
}

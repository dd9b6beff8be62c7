/** The session directory of one process (and of tests): records and heartbeats in maps, lapsing by the clock. */
import { randomUUID } from 'node:crypto';
import type { SessionClaim, SessionDirectory, SessionRecord } from '../sessions.js';
import type { Clock } from '../types.js';

export class MemorySessionDirectory implements SessionDirectory {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly replicas = new Map<string, { url: string; expires: number }>();

  constructor(
    readonly replicaId: string = randomUUID(),
    private readonly now: Clock = Date.now,
    /** Several replicas of one test share the maps. */
    shared?: MemorySessionDirectory,
  ) {
    if (shared) {
      this.sessions = shared.sessions;
      this.replicas = shared.replicas;
    }
  }

  claim(claims: readonly SessionClaim[], ttlMs: number): void {
    const expires = this.now() + ttlMs;
    for (const c of claims) this.sessions.set(c.sessionId, { replica: this.replicaId, principal: c.principal, expires });
  }

  lookup(sessionId: string): SessionRecord | undefined {
    const r = this.sessions.get(sessionId);
    if (r && r.expires <= this.now()) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return r ? { ...r } : undefined;
  }

  release(sessionId: string): void {
    if (this.sessions.get(sessionId)?.replica === this.replicaId) this.sessions.delete(sessionId);
  }

  advertise(url: string, ttlMs: number): void {
    this.replicas.set(this.replicaId, { url, expires: this.now() + ttlMs });
  }

  addressOf(replica: string): string | undefined {
    const r = this.replicas.get(replica);
    return r && r.expires > this.now() ? r.url : undefined;
  }

  withdraw(): void {
    this.replicas.delete(this.replicaId);
  }

  health(): { ok: boolean } {
    return { ok: true };
  }

  close(): void {}
}

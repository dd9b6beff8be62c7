/** Delegation tokens, revocations and slices in process memory (tests, and gateways without a data directory). */
import type { DelegationTokenStore, FullSlice, MintedToken, Slice, SliceStore } from '../delegation.js';
import type { Clock } from '../types.js';

export class MemoryDelegationTokens implements DelegationTokenStore {
  private readonly tokens = new Map<string, MintedToken>();
  private readonly revoked = new Set<string>();
  private readonly now: Clock;

  constructor(opts: { now?: Clock } = {}) {
    this.now = opts.now ?? Date.now;
  }

  record(t: MintedToken): void {
    if (this.tokens.has(t.jti)) throw new Error(`delegation token ${t.jti} is already recorded`);
    this.tokens.set(t.jti, { ...t });
  }

  get(jti: string): MintedToken | undefined {
    return this.tokens.get(jti);
  }

  knows(jti: string): boolean {
    if (this.tokens.has(jti)) return true;
    for (const t of this.tokens.values()) if (t.parentJti === jti) return true;
    return false;
  }

  liveTokens(): MintedToken[] {
    const now = this.now();
    return [...this.tokens.values()].filter((t) => t.expiresAt > now && !this.revoked.has(t.jti));
  }

  isRevoked(jti: string): boolean {
    return this.revoked.has(jti);
  }

  descendants(jti: string): MintedToken[] {
    const out: MintedToken[] = [];
    const seen = new Set<string>([jti]);
    for (let frontier = [jti]; frontier.length > 0; ) {
      const next: string[] = [];
      for (const t of this.tokens.values()) {
        if (t.parentJti === undefined || !frontier.includes(t.parentJti) || seen.has(t.jti)) continue;
        seen.add(t.jti);
        out.push(t);
        next.push(t.jti);
      }
      frontier = next;
    }
    return out;
  }

  revoke(jti: string): { revoked: string[]; descendants: MintedToken[] } {
    const descendants = this.descendants(jti);
    const revoked = [jti, ...descendants.map((d) => d.jti)];
    for (const r of revoked) this.revoked.add(r);
    return { revoked, descendants };
  }
}

/** Slices in a map: the reference behaviour the persistent stores keep. */
export class MemorySlices implements SliceStore {
  protected readonly spent = new Map<string, number>();

  check(slices: readonly Slice[]): FullSlice | undefined {
    for (const slice of slices) {
      const used = this.spent.get(slice.jti) ?? 0;
      if (used >= slice.max) return { slice, used };
    }
    return undefined;
  }

  take(slices: readonly Slice[]): FullSlice | undefined {
    const full = this.check(slices);
    if (full) return full;
    for (const s of slices) this.spent.set(s.jti, (this.spent.get(s.jti) ?? 0) + 1);
    this.saved(slices);
    return undefined;
  }

  giveBack(slices: readonly Slice[]): void {
    for (const s of slices) this.spent.set(s.jti, Math.max(0, (this.spent.get(s.jti) ?? 0) - 1));
    this.saved(slices);
  }

  used(jti: string): number {
    return this.spent.get(jti) ?? 0;
  }

  close(): void {}

  /** After the counts of these slices changed; persistent stores write them here. */
  protected saved(_slices: readonly Slice[]): void {}
}

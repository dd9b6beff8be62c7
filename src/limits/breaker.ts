/**
 * Per-upstream circuit breaker: after N consecutive failures or timeouts, calls fail at once for a cooldown,
 * then one probe is let through; its success closes the circuit, its failure re-opens it.
 */
import type { Refusal } from '../gateway/types.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures (errors or timeouts) that open the circuit. */
  failureThreshold?: number;
  /** How long an open circuit fails fast before letting a probe through. */
  cooldownMs?: number;
  now?: () => number;
  onStateChange?: (state: BreakerState, previous: BreakerState) => void;
}

export const DEFAULT_FAILURE_THRESHOLD = 5;
export const DEFAULT_COOLDOWN_MS = 10_000;

export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onStateChange?: BreakerOptions['onStateChange'];
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  /** When the half-open probe was let through; 0 when none is in flight. */
  private probeAt = 0;

  constructor(opts: BreakerOptions = {}) {
    this.failureThreshold = Math.max(1, opts.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD);
    this.cooldownMs = Math.max(0, opts.cooldownMs ?? DEFAULT_COOLDOWN_MS);
    this.now = opts.now ?? Date.now;
    this.onStateChange = opts.onStateChange;
  }

  /** 'open' turns into 'half-open' once the cooldown has passed, even before anyone asks to pass. */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) this.transition('half-open');
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Ms until an open circuit lets a probe through (0 when calls may pass). */
  retryAfterMs(): number {
    if (this.state !== 'open') return 0;
    return Math.max(0, this.openedAt + this.cooldownMs - this.now());
  }

  /** May a call go upstream now? In half-open only one probe at a time passes. */
  canPass(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open') return false;
    const now = this.now();
    // A probe whose outcome was never reported must not wedge the circuit: after a cooldown allow another.
    if (this.probeAt !== 0 && now - this.probeAt < Math.max(this.cooldownMs, 1)) return false;
    this.probeAt = now;
    return true;
  }

  onSuccess(): void {
    this.failures = 0;
    // A late success from a call started before the circuit opened proves little; only a probe closes it.
    if (this.current === 'half-open') this.transition('closed');
  }

  /** Count a failure or timeout (not a tool-level error result: the upstream answered). */
  onFailure(): void {
    if (this.state === 'half-open') {
      this.open();
      return;
    }
    if (this.current === 'open') return;
    this.failures += 1;
    if (this.failures >= this.failureThreshold) this.open();
  }

  private open(): void {
    this.openedAt = this.now();
    this.transition('open');
  }

  private transition(next: BreakerState): void {
    const previous = this.current;
    this.probeAt = 0;
    if (next === 'closed') this.failures = 0;
    this.current = next;
    if (previous !== next) this.onStateChange?.(next, previous);
  }
}

/** The refusal for a call stopped by an open circuit. */
export function upstreamUnavailable(server: string, breaker: CircuitBreaker): Refusal {
  const retryAfterSeconds = Math.max(1, Math.ceil(breaker.retryAfterMs() / 1000));
  return {
    reason: 'upstream_unavailable',
    message:
      `Upstream ${server} is failing (${breaker.failureThreshold} consecutive failures) and is paused for recovery; ` +
      `retry in about ${retryAfterSeconds} s.`,
    data: { server, breaker: breaker.state, retryAfterSeconds },
  };
}

export interface BreakerBoardOptions extends Omit<BreakerOptions, 'onStateChange'> {
  onStateChange?: (server: string, state: BreakerState, previous: BreakerState) => void;
}

/** One breaker per upstream server, created on first use. */
export class BreakerBoard {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(private readonly defaults: BreakerBoardOptions = {}) {}

  /** The server's breaker; `overrides` apply only when it is created (or after `remove`). */
  get(server: string, overrides: Omit<BreakerOptions, 'now' | 'onStateChange'> = {}): CircuitBreaker {
    let b = this.breakers.get(server);
    if (!b) {
      const notify = this.defaults.onStateChange;
      b = new CircuitBreaker({
        failureThreshold: overrides.failureThreshold ?? this.defaults.failureThreshold,
        cooldownMs: overrides.cooldownMs ?? this.defaults.cooldownMs,
        now: this.defaults.now,
        onStateChange: notify && ((state, previous) => notify(server, state, previous)),
      });
      this.breakers.set(server, b);
    }
    return b;
  }

  canPass(server: string): boolean {
    return this.get(server).canPass();
  }

  onSuccess(server: string): void {
    this.breakers.get(server)?.onSuccess();
  }

  onFailure(server: string): void {
    this.get(server).onFailure();
  }

  /** Refusal for a server whose circuit does not let this call pass, else undefined. */
  check(server: string): Refusal | undefined {
    const b = this.get(server);
    return b.canPass() ? undefined : upstreamUnavailable(server, b);
  }

  /** Forget a server (removed from servers.d, or its manifest changed). */
  remove(server: string): void {
    this.breakers.delete(server);
  }

  states(): Record<string, BreakerState> {
    const out: Record<string, BreakerState> = {};
    for (const [name, b] of this.breakers) out[name] = b.state;
    return out;
  }
}

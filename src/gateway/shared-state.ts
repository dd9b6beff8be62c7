/**
 * What a replica does while Redis or PostgreSQL does not answer (SPEC §12, docs/decisions/0094): /readyz turns red,
 * and calls are refused (`state.failMode: closed`, the default) or admitted and logged (`open`). The stores reconnect
 * on their own; this watch only reads their health, logs each change once, and lets calls through again when it clears.
 */
import type { Logger } from 'pino';
import type { SharedHealth } from '../stores/open.js';
import type { GuardCheck, Refusal } from './types.js';

export type FailMode = 'closed' | 'open';

export interface SharedStateWatchOptions {
  health: () => SharedHealth[];
  failMode: FailMode;
  log: Pick<Logger, 'warn' | 'error' | 'info'>;
  /** How often the watch looks for changes to log them (calls read health themselves). */
  pollMs?: number;
}

const NAMES: Record<SharedHealth['name'], string> = { redis: 'Redis', postgres: 'PostgreSQL' };

function describe(down: readonly SharedHealth[]): string {
  return down.map((h) => `${NAMES[h.name]} at ${h.target}${h.error ? ` (${h.error})` : ''}`).join(' and ');
}

export class SharedStateWatch {
  private timer: NodeJS.Timeout | undefined;
  /** Names down at the last look, so each outage and each recovery is logged once. */
  private downBefore = new Set<string>();
  private admittedWhileDown = 0;

  constructor(private readonly opts: SharedStateWatchOptions) {}

  get failMode(): FailMode {
    return this.opts.failMode;
  }

  /** The shared servers that do not answer now. */
  down(): SharedHealth[] {
    return this.opts.health().filter((h) => !h.ok);
  }

  /** The first guard of the chain: nothing in between may count or decide on state that cannot be shared now. */
  readonly guard: GuardCheck = () => {
    const down = this.down();
    if (down.length === 0) {
      if (this.downBefore.size > 0) this.observe(down);
      return undefined;
    }
    this.observe(down);
    if (this.opts.failMode === 'closed') return sharedStateRefusal(down);
    if (++this.admittedWhileDown === 1) this.opts.log.warn({ unavailable: down.map((h) => h.name), failMode: 'open' }, `admitting calls while ${describe(down)} is unreachable (state.failMode: open); limits and control from other replicas do not apply until it answers`);
    return undefined;
  };

  /** Log outages and recoveries as they happen, not only when a call arrives. */
  start(): this {
    if (this.opts.health().length === 0 || this.timer) return this;
    this.timer = setInterval(() => this.observe(this.down()), this.opts.pollMs ?? 500);
    this.timer.unref();
    return this;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private observe(down: readonly SharedHealth[]): void {
    const now = new Set(down.map((h) => h.name));
    const fresh = down.filter((h) => !this.downBefore.has(h.name));
    const back = [...this.downBefore].filter((n) => !now.has(n as SharedHealth['name']));
    this.downBefore = now;
    if (fresh.length > 0) {
      const doing =
        this.opts.failMode === 'closed'
          ? 'refusing calls (state.failMode: closed) and reporting not ready on /readyz until it answers again; reconnecting on its own'
          : 'admitting calls without shared limits, revocations or pauses from other replicas (state.failMode: open) and reporting not ready on /readyz; reconnecting on its own';
      this.opts.log.error({ unavailable: fresh.map((h) => h.name), failMode: this.opts.failMode }, `${describe(fresh)} is unreachable: ${doing}; check that server`);
    }
    if (back.length > 0) {
      const admitted = this.admittedWhileDown;
      this.admittedWhileDown = 0;
      this.opts.log.info(
        { available: back, failMode: this.opts.failMode, ...(this.opts.failMode === 'open' ? { admittedWhileDown: admitted } : {}) },
        `${back.map((n) => NAMES[n as SharedHealth['name']]).join(' and ')} answers again: serving calls on shared state`,
      );
    }
  }
}

/** How a call refused for shared state reads, on every adapter (error.data names what is down). */
export function sharedStateRefusal(down: readonly SharedHealth[]): Refusal {
  return {
    reason: 'upstream_unavailable',
    message: `The gateway's shared state is unreachable: ${describe(down)}. state.failMode is closed, so calls are refused until it answers again; retry in a few seconds (no restart is needed), and tell the operator if it lasts.`,
    data: { unavailable: down.map((h) => h.name), failMode: 'closed', retryAfterSeconds: 1 },
  };
}

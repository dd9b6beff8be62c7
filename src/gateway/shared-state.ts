/**
 * What a replica does while Redis or PostgreSQL does not answer (SPEC §12, docs/decisions/0034-stores-chosen-at-start-and-fail-mode.md): /readyz turns red,
 * and calls are refused (`state.failMode: closed`, the default) or admitted and logged (`open`). The stores reconnect
 * on their own and log each outage; this watch only reads their health and lets calls through again when it clears.
 */
import type { Logger } from 'pino';
import type { SharedHealth } from '../stores/open.js';
import type { GuardCheck, Refusal } from './types.js';

export type FailMode = 'closed' | 'open';

export interface SharedStateWatchOptions {
  health: () => SharedHealth[];
  failMode: FailMode;
  log: Pick<Logger, 'warn' | 'info'>;
}

const NAMES: Record<SharedHealth['name'], string> = { redis: 'Redis', postgres: 'PostgreSQL' };

function describe(down: readonly SharedHealth[]): string {
  return down.map((h) => `${NAMES[h.name]} at ${h.target}${h.error ? ` (${h.error})` : ''}`).join(' and ');
}

export class SharedStateWatch {
  /** Names down at the last call, so the admitted calls of an outage are counted and announced once. */
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

  /**
   * The first guard of the chain: nothing after it may count or decide on state that cannot be shared now. The
   * stores' clients log each outage and recovery; this adds what failMode open let through meanwhile.
   */
  readonly guard: GuardCheck = () => {
    const down = this.down();
    if (down.length === 0) {
      if (this.downBefore.size > 0) this.recovered();
      return undefined;
    }
    this.downBefore = new Set(down.map((h) => h.name));
    // failMode is about Redis (SPEC §12): without PostgreSQL no step can be numbered or recorded, so none is admitted.
    if (this.opts.failMode === 'closed' || down.some((h) => h.name === 'postgres')) return sharedStateRefusal(down, this.opts.failMode);
    if (++this.admittedWhileDown === 1) {
      this.opts.log.warn({ unavailable: down.map((h) => h.name), failMode: 'open' }, `admitting calls while ${describe(down)} is unreachable (state.failMode: open); limits and control from other replicas do not apply until it answers`);
    }
    return undefined;
  };

  private recovered(): void {
    const names = [...this.downBefore];
    this.downBefore = new Set();
    const admitted = this.admittedWhileDown;
    this.admittedWhileDown = 0;
    if (this.opts.failMode === 'open' && admitted > 0) {
      this.opts.log.info({ available: names, failMode: 'open', admittedWhileDown: admitted }, `${names.map((n) => NAMES[n as SharedHealth['name']]).join(' and ')} answers again; ${admitted} call(s) were admitted without shared state meanwhile`);
    }
  }
}

/** How a call refused for shared state reads, on every adapter (error.data names what is down). */
export function sharedStateRefusal(down: readonly SharedHealth[], failMode: FailMode = 'closed'): Refusal {
  const why = failMode === 'closed' ? 'state.failMode is closed, so calls are refused' : 'no step can be recorded without PostgreSQL, so calls are refused';
  return {
    reason: 'upstream_unavailable',
    message: `The gateway's shared state is unreachable: ${describe(down)}. ${why} until it answers again; retry in a few seconds (no restart is needed), and tell the operator if it lasts.`,
    data: { unavailable: down.map((h) => h.name), failMode, retryAfterSeconds: 1 },
  };
}

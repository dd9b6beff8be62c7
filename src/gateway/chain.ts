/** The ordered guard chain every Step walks before it is routed. Stays synchronous unless a guard needs to wait. */
import type { Guard, GuardContext, Refusal, Step } from './types.js';

export type ChainResult = Refusal | undefined | Promise<Refusal | undefined>;

export class GuardChain {
  private guards: Guard[] = [];

  constructor(guards: Guard[] = []) {
    this.guards = guards;
  }

  use(guard: Guard): this {
    this.guards.push(guard);
    return this;
  }

  run(step: Step, ctx: GuardContext): ChainResult {
    const guards = this.guards;
    for (let i = 0; i < guards.length; i++) {
      const r = guards[i]!(step, ctx);
      if (r === undefined) continue;
      if (r instanceof Promise) return this.continueAsync(r, i + 1, step, ctx);
      return r;
    }
    return undefined;
  }

  private async continueAsync(first: Promise<Refusal | undefined>, next: number, step: Step, ctx: GuardContext): Promise<Refusal | undefined> {
    const r = await first;
    if (r) return r;
    for (let i = next; i < this.guards.length; i++) {
      const x = await this.guards[i]!(step, ctx);
      if (x) return x;
    }
    return undefined;
  }
}

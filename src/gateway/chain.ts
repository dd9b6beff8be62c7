/**
 * The ordered guard chain every Step walks before it is routed: every check, then every commit, then (once the
 * call has run) every after. Stays synchronous unless a check needs to wait; commits never wait.
 */
import type { Guard, GuardCheck, GuardContext, PhasedGuard, Refusal, Step, StepOutcome } from './types.js';

export type ChainResult = Refusal | undefined | Promise<Refusal | undefined>;

type Committer = Required<Pick<PhasedGuard, 'commit'>> & Pick<PhasedGuard, 'rollback'>;

export class GuardChain {
  private readonly checks: GuardCheck[] = [];
  private readonly commits: Committer[] = [];
  private readonly afters: PhasedGuard[] = [];

  constructor(guards: Guard[] = []) {
    for (const g of guards) this.use(g);
  }

  use(guard: Guard): this {
    if (typeof guard === 'function') {
      this.checks.push(guard);
      return this;
    }
    if (guard.check) this.checks.push(guard.check);
    if (guard.commit) this.commits.push(guard as Committer);
    if (guard.after) this.afters.push(guard);
    return this;
  }

  /** Check, then commit at once: nothing waits between the last check and the commits. */
  run(step: Step, ctx: GuardContext): ChainResult {
    const r = this.check(step, ctx);
    if (r === undefined) return this.commit(step);
    if (r instanceof Promise) return r.then((x) => x ?? this.commit(step));
    return r;
  }

  /** Every check in order, up to the first refusal; nothing is spent. */
  check(step: Step, ctx: GuardContext): ChainResult {
    const checks = this.checks;
    for (let i = 0; i < checks.length; i++) {
      const r = checks[i]!(step, ctx);
      if (r === undefined) continue;
      if (r instanceof Promise) return this.continueChecks(r, i + 1, step, ctx);
      return r;
    }
    return undefined;
  }

  /** Every commit in order; a refusal rolls back the commits already made, so the refused call spends nothing. */
  commit(step: Step): Refusal | undefined {
    const commits = this.commits;
    for (let i = 0; i < commits.length; i++) {
      const r = commits[i]!.commit(step);
      if (r === undefined) continue;
      this.undo(step, i);
      return r;
    }
    return undefined;
  }

  /** Undo every commit of a step that is refused after its commits (e.g. by an open circuit). */
  rollback(step: Step): void {
    this.undo(step, this.commits.length);
  }

  /** The outcome of a committed step, for every guard that wants it. */
  after(step: Step, outcome: StepOutcome): void {
    const afters = this.afters;
    for (let i = 0; i < afters.length; i++) afters[i]!.after!(step, outcome);
  }

  private undo(step: Step, end: number): void {
    for (let j = end - 1; j >= 0; j--) this.commits[j]!.rollback?.(step);
  }

  private async continueChecks(first: Promise<Refusal | undefined>, next: number, step: Step, ctx: GuardContext): Promise<Refusal | undefined> {
    const r = await first;
    if (r) return r;
    for (let i = next; i < this.checks.length; i++) {
      const x = await this.checks[i]!(step, ctx);
      if (x) return x;
    }
    return undefined;
  }
}

/**
 * The ordered guard chain every Step walks before it is routed: every check, then every commit, then (once the
 * call has run) every after. Stays synchronous unless a guard returns a promise (a waiting check, or a commit,
 * rollback or after on a store that answers asynchronously); a refusal always rolls back the commits made before it.
 */
import type { Guard, GuardCheck, GuardContext, PhasedGuard, Refusal, Step, StepOutcome } from './types.js';

export type ChainResult = Refusal | undefined | Promise<Refusal | undefined>;

type Committer = Required<Pick<PhasedGuard, 'commit'>> & Pick<PhasedGuard, 'rollback'>;

export interface GuardChainOptions {
  /** A rollback or after that failed asynchronously (a store went away); the step's answer is already decided. */
  onError?: (err: unknown, phase: 'rollback' | 'after') => void;
}

export class GuardChain {
  private readonly checks: GuardCheck[] = [];
  private readonly commits: Committer[] = [];
  private readonly afters: PhasedGuard[] = [];
  private readonly onError: (err: unknown, phase: 'rollback' | 'after') => void;

  constructor(guards: Guard[] = [], opts: GuardChainOptions = {}) {
    for (const g of guards) this.use(g);
    this.onError = opts.onError ?? ((err, phase) => process.emitWarning(`guard ${phase} failed: ${String(err)}`));
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

  /**
   * Every commit in order; a refusal rolls back the commits already made, so the refused call spends nothing.
   * Returns a promise only from the first commit that returns one; the commits after it wait for it.
   */
  commit(step: Step): ChainResult {
    const commits = this.commits;
    for (let i = 0; i < commits.length; i++) {
      const r = commits[i]!.commit(step);
      if (r === undefined) continue;
      if (r instanceof Promise) return this.continueCommits(r, i, step);
      return this.refuseAfter(step, i, r);
    }
    return undefined;
  }

  /** Undo every commit of a step that is refused after its commits (e.g. by an open circuit). */
  rollback(step: Step): void | Promise<void> {
    return this.undo(step, this.commits.length);
  }

  /** The outcome of a committed step, for every guard that wants it; a promise only when an after returns one. */
  after(step: Step, outcome: StepOutcome): void | Promise<void> {
    const afters = this.afters;
    let waits: Promise<void>[] | undefined;
    for (let i = 0; i < afters.length; i++) {
      const r = afters[i]!.after!(step, outcome);
      if (r instanceof Promise) (waits ??= []).push(r.catch((err: unknown) => this.onError(err, 'after')));
    }
    if (waits) return Promise.all(waits).then(() => undefined);
  }

  /** Roll back commits [0, end) newest first; each waits for the one after it, so undo order holds with async stores. */
  private undo(step: Step, end: number): void | Promise<void> {
    for (let j = end - 1; j >= 0; j--) {
      const r = this.commits[j]!.rollback?.(step);
      if (r instanceof Promise) return this.continueUndo(r, j, step);
    }
  }

  private async continueUndo(pending: Promise<void>, at: number, step: Step): Promise<void> {
    await pending.catch((err: unknown) => this.onError(err, 'rollback'));
    for (let j = at - 1; j >= 0; j--) {
      try {
        await this.commits[j]!.rollback?.(step);
      } catch (err) {
        this.onError(err, 'rollback');
      }
    }
  }

  private refuseAfter(step: Step, failed: number, refusal: Refusal): ChainResult {
    const undone = this.undo(step, failed);
    return undone instanceof Promise ? undone.then(() => refusal) : refusal;
  }

  private async continueCommits(first: Promise<Refusal | undefined>, at: number, step: Step): Promise<Refusal | undefined> {
    let r: Refusal | undefined;
    try {
      r = await first;
    } catch (err) {
      // A commit that failed spent nothing of its own; the ones before it are given back, then the error stands.
      await this.undo(step, at);
      throw err;
    }
    if (r) return this.refuseAfter(step, at, r);
    for (let i = at + 1; i < this.commits.length; i++) {
      try {
        r = await this.commits[i]!.commit(step);
      } catch (err) {
        await this.undo(step, i);
        throw err;
      }
      if (r) return this.refuseAfter(step, i, r);
    }
    return undefined;
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

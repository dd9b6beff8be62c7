/**
 * Guard for delegated callers: hangs their steps under the step that delegated to them (token `pstep`), and
 * counts tool calls against the `budget` slice of their token and of every ancestor token that has one: `check`
 * refuses a call no slice has room for, `commit` takes one call from every slice (re-checking), `rollback` returns it.
 */
import type { MintedToken } from '../../identity/delegation-store.js';
import type { PhasedGuard, Refusal, Step } from '../types.js';

export interface DelegationGuardOptions {
  /** The minted-token record of a jti (DelegationStore.get). */
  tokenOf(jti: string): MintedToken | undefined;
}

const MAX_HOPS = 32;

export function createDelegationGuard(opts: DelegationGuardOptions): PhasedGuard {
  /** Tool calls made under each budgeted token (in memory: a restart gives each slice a fresh count). */
  const used = new Map<string, number>();
  const lineage = new Map<string, MintedToken[]>();

  const budgetedLineage = (jti: string): MintedToken[] => {
    let line = lineage.get(jti);
    if (line) return line;
    line = [];
    let at: string | undefined = jti;
    for (let hops = 0; at && hops < MAX_HOPS; hops++) {
      const t = opts.tokenOf(at);
      if (!t) break;
      if (t.budgetToolCalls !== undefined) line.push(t);
      at = t.parentJti;
    }
    if (lineage.size > 10_000) lineage.clear();
    lineage.set(jti, line);
    return line;
  };

  /** The budgeted slices a tool call of this step draws on; undefined when it draws on none. */
  const slicesOf = (step: Step): MintedToken[] | undefined => {
    const caller = step.caller;
    if (caller.via !== 'delegated' || step.kind !== 'tools/call' || !caller.jti) return undefined;
    return budgetedLineage(caller.jti);
  };

  const full = (slices: readonly MintedToken[]): Refusal | undefined => {
    for (const t of slices) {
      const n = used.get(t.jti) ?? 0;
      if (n >= t.budgetToolCalls!) {
        return {
          reason: 'budget_exceeded',
          message: `The delegated budget of ${t.budgetToolCalls} tool calls given to ${t.agent} is used up; the delegating agent can mint a new token with a larger budget.`,
          data: { limit: 'delegation.budget.toolCalls', used: n, max: t.budgetToolCalls, jti: t.jti },
        };
      }
    }
    return undefined;
  };

  return {
    check: (step) => {
      const caller = step.caller;
      if (caller.via !== 'delegated') return undefined;
      const pstep = caller.claims?.pstep;
      if (step.parentStep === undefined && typeof pstep === 'number') step.parentStep = pstep;
      const slices = slicesOf(step);
      return slices && full(slices);
    },
    commit: (step) => {
      const slices = slicesOf(step);
      if (!slices) return undefined;
      const refusal = full(slices);
      if (refusal) return refusal;
      for (const t of slices) used.set(t.jti, (used.get(t.jti) ?? 0) + 1);
      return undefined;
    },
    rollback: (step) => {
      const slices = slicesOf(step);
      if (slices) for (const t of slices) used.set(t.jti, (used.get(t.jti) ?? 1) - 1);
    },
  };
}

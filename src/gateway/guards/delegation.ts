/**
 * Guard for delegated callers: hangs their steps under the step that delegated to them (token `pstep`), and
 * counts tool calls against the `budget` slice of their token and of every ancestor token that has one: `check`
 * refuses a call no slice has room for, `commit` takes one call from every slice (atomically, in the slice store),
 * `rollback` returns it. Slices live in a SliceStore, so a restart gives no slice a fresh count.
 */
import type { FullSlice, MintedToken, Slice, SliceStore } from '../../stores/delegation.js';
import { MemorySlices } from '../../stores/memory/delegation.js';
import type { Awaitable } from '../../stores/types.js';
import type { PhasedGuard, Refusal, Step } from '../types.js';

export interface DelegationGuardOptions {
  /** The minted-token record of a jti (DelegationTokenStore.get). */
  tokenOf(jti: string): MintedToken | undefined;
  /** Where spent calls are counted; default in memory. */
  slices?: SliceStore;
}

const MAX_HOPS = 32;

function fullRefusal(full: FullSlice, tokenOf: (jti: string) => MintedToken | undefined): Refusal {
  const { slice, used } = full;
  const agent = tokenOf(slice.jti)?.agent ?? 'the delegated agent';
  return {
    reason: 'budget_exceeded',
    message: `The delegated budget of ${slice.max} tool calls given to ${agent} is used up; the delegating agent can mint a new token with a larger budget.`,
    data: { limit: 'delegation.budget.toolCalls', used, max: slice.max, jti: slice.jti },
  };
}

export function createDelegationGuard(opts: DelegationGuardOptions): PhasedGuard {
  const store = opts.slices ?? new MemorySlices();
  const lineage = new Map<string, Slice[]>();

  const budgetedLineage = (jti: string): Slice[] => {
    let line = lineage.get(jti);
    if (line) return line;
    line = [];
    let at: string | undefined = jti;
    for (let hops = 0; at && hops < MAX_HOPS; hops++) {
      const t = opts.tokenOf(at);
      if (!t) break;
      if (t.budgetToolCalls !== undefined) line.push({ jti: t.jti, max: t.budgetToolCalls, expiresAt: t.expiresAt });
      at = t.parentJti;
    }
    // A caller's own token always has a record once it is here; without one, ask again next time rather than remember "no budget".
    if (!opts.tokenOf(jti)) return line;
    if (lineage.size > 10_000) lineage.clear();
    lineage.set(jti, line);
    return line;
  };

  /** The budgeted slices a tool call of this step draws on; undefined when it draws on none. */
  const slicesOf = (step: Step): Slice[] | undefined => {
    const caller = step.caller;
    if (caller.via !== 'delegated' || step.kind !== 'tools/call' || !caller.jti) return undefined;
    const line = budgetedLineage(caller.jti);
    return line.length > 0 ? line : undefined;
  };

  const refusalOf = (full: Awaitable<FullSlice | undefined>): Awaitable<Refusal | undefined> => {
    if (full === undefined) return undefined;
    if (full instanceof Promise) return full.then((f) => f && fullRefusal(f, opts.tokenOf));
    return fullRefusal(full, opts.tokenOf);
  };

  return {
    check: (step) => {
      const caller = step.caller;
      if (caller.via !== 'delegated') return undefined;
      const pstep = caller.claims?.pstep;
      if (step.parentStep === undefined && typeof pstep === 'number') step.parentStep = pstep;
      const slices = slicesOf(step);
      return slices && refusalOf(store.check(slices));
    },
    commit: (step) => {
      const slices = slicesOf(step);
      return slices && refusalOf(store.take(slices));
    },
    rollback: (step) => {
      const slices = slicesOf(step);
      if (slices) return store.giveBack(slices);
    },
  };
}

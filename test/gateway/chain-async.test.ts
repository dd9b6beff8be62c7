// Commits, rollbacks and afters that answer with promises (as a shared store will): a refusal still rolls back every
// earlier commit, newest first, and a chain whose guards are all synchronous still answers without a promise.
import { describe, expect, it } from 'vitest';
import { GuardChain } from '../../src/gateway/chain.js';
import type { PhasedGuard, Refusal, Step } from '../../src/gateway/types.js';
import { step } from '../limits/helpers.js';

const no = (reason: Refusal['reason']): Refusal => ({ reason, message: `refused (${reason}).` });

/** A guard reserving one unit of `held`, answering through a promise when `async`. */
function reserving(name: string, log: string[], held: Map<string, number>, opts: { async?: boolean; refuse?: boolean; fail?: boolean } = {}): PhasedGuard {
  const wrap = <T>(v: T): T | Promise<T> => (opts.async ? Promise.resolve().then(() => v) : v);
  return {
    commit: () => {
      if (opts.fail) return Promise.reject(new Error(`${name} store is down`));
      log.push(`commit ${name}`);
      if (opts.refuse) return wrap(no('budget_exceeded'));
      held.set(name, (held.get(name) ?? 0) + 1);
      return wrap(undefined);
    },
    rollback: () => {
      log.push(`rollback ${name}`);
      held.set(name, (held.get(name) ?? 0) - 1);
      return opts.async ? Promise.resolve() : undefined;
    },
    after: (_s, outcome) => {
      log.push(`after ${name} ${outcome.outcome}`);
      return opts.async ? Promise.resolve() : undefined;
    },
  };
}

const s = (): Step => step(undefined);

describe('guard chain with asynchronous commits', () => {
  it('stays promise-free when every guard is synchronous', () => {
    const log: string[] = [];
    const held = new Map<string, number>();
    const chain = new GuardChain([reserving('a', log, held), reserving('b', log, held)]);
    const r = chain.run(s(), {});
    expect(r).toBeUndefined();
    expect(chain.after(s(), { outcome: 'ok', durationMs: 1 })).toBeUndefined();
    expect(chain.rollback(s())).toBeUndefined();
    expect(log).toEqual(['commit a', 'commit b', 'after a ok', 'after b ok', 'rollback b', 'rollback a']);
  });

  it('an async commit that refuses rolls back the sync and async commits before it, newest first', async () => {
    const log: string[] = [];
    const held = new Map<string, number>();
    const chain = new GuardChain([
      reserving('sync', log, held),
      reserving('remote', log, held, { async: true }),
      reserving('full', log, held, { async: true, refuse: true }),
      reserving('never', log, held),
    ]);
    const r = chain.commit(s());
    expect(r).toBeInstanceOf(Promise);
    expect((await r)?.reason).toBe('budget_exceeded');
    expect(log).toEqual(['commit sync', 'commit remote', 'commit full', 'rollback remote', 'rollback sync']);
    expect([...held.values()].every((n) => n === 0)).toBe(true);
  });

  it('a sync commit refusing after an async one waits for the async rollback before answering', async () => {
    const log: string[] = [];
    const held = new Map<string, number>();
    const chain = new GuardChain([reserving('remote', log, held, { async: true }), reserving('full', log, held, { refuse: true })]);
    expect((await chain.commit(s()))?.reason).toBe('budget_exceeded');
    expect(log).toEqual(['commit remote', 'commit full', 'rollback remote']);
    expect(held.get('remote')).toBe(0);
  });

  it('a commit whose store fails gives back the commits before it and rejects with the store error', async () => {
    const log: string[] = [];
    const held = new Map<string, number>();
    const chain = new GuardChain([reserving('a', log, held), reserving('remote', log, held, { async: true }), reserving('down', log, held, { fail: true })]);
    await expect(chain.commit(s())).rejects.toThrow(/down store is down/);
    expect(log).toEqual(['commit a', 'commit remote', 'rollback remote', 'rollback a']);
    expect([...held.values()].every((n) => n === 0)).toBe(true);
  });

  it('a check refusal after an async check spends nothing; an allowed run commits after the wait', async () => {
    const log: string[] = [];
    const held = new Map<string, number>();
    let allow = false;
    const chain = new GuardChain([() => Promise.resolve(allow ? undefined : no('approval_denied')), reserving('remote', log, held, { async: true })]);
    expect((await chain.run(s(), {}))?.reason).toBe('approval_denied');
    expect(log).toEqual([]);
    allow = true;
    expect(await chain.run(s(), {})).toBeUndefined();
    expect(held.get('remote')).toBe(1);
  });

  it('async afters are awaited together, and one failing is reported without hiding the others', async () => {
    const log: string[] = [];
    const errors: string[] = [];
    const chain = new GuardChain(
      [reserving('a', log, new Map(), { async: true }), { after: () => Promise.reject(new Error('counter store gone')) }, reserving('b', log, new Map())],
      { onError: (err, phase) => errors.push(`${phase}: ${(err as Error).message}`) },
    );
    await chain.after(s(), { outcome: 'error', durationMs: 1 });
    expect(log).toEqual(['after a error', 'after b error']);
    expect(errors).toEqual(['after: counter store gone']);
  });
});

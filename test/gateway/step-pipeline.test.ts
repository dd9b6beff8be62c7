// The Step pipeline in process: phases in order, a refusal at each guard spends nothing and is recorded once,
// names that turn out unknown are not steps, after sees outcomes, retries and the breaker, and asynchronous phases.
import { describe, expect, it } from 'vitest';
import { BreakerBoard } from '../../src/limits/breaker.js';
import { GuardChain } from '../../src/gateway/chain.js';
import { runPipeline, type PhasedChain, type PipelineDeps, type Routed, type StepPlan } from '../../src/gateway/pipeline.js';
import type { Refusal, Step, StepOutcome } from '../../src/gateway/types.js';
import { agent, step } from '../limits/helpers.js';
import { LOOP, pipeline, refusal, refusers, TOOL, WF, type P } from './guard-fixture.js';

const ok = <T>(value: T, extra: Partial<Routed<T>> = {}): Routed<T> => ({ value, outcome: 'ok', ...extra });
const unreachable = (extra: Partial<Routed<string>> = {}): Routed<string> => ({ value: 'unreachable', outcome: 'error', reason: 'upstream_unavailable', transportFailure: true, ...extra });

/** Pipeline deps over the fixture's chain, recording what the sinks saw and every pause between attempts. */
function deps(p: P, extra: Partial<PipelineDeps> = {}) {
  const recorded: Array<[Step, StepOutcome]> = [];
  const pauses: number[] = [];
  const d: PipelineDeps = {
    chain: p.chain,
    sinks: [{ record: (s, o) => void recorded.push([{ ...s }, o]) }],
    workflows: p.workflows,
    pause: async (attempt) => void pauses.push(attempt),
    now: p.clock.now,
    ...extra,
  };
  return { d, recorded, pauses };
}

/** A route that answers from a script, one entry per attempt, counting its calls. */
function scripted<T>(...answers: Array<Routed<T> | { unknown: true }>) {
  const calls: number[] = [];
  const route: StepPlan<T>['route'] = async (attempt) => {
    calls.push(attempt);
    return answers[Math.min(attempt, answers.length) - 1]!;
  };
  return { route, calls };
}

describe('the Step pipeline: a refusal at any guard', () => {
  for (const r of refusers) {
    it(`by the ${r.guard} guard is recorded once, never routed, and leaves budgets, windows, loop history and the slice as they were`, async () => {
      const p = pipeline();
      const { d, recorded } = deps(p);
      r.arm(p);
      const { route, calls } = scripted(ok('answer'));
      const s = p.call({ n: 1 }, r.jti);
      s.stepNo = 0;
      const result = await runPipeline(d, s, { route });
      expect(result).toMatchObject({ kind: 'refused', recorded: true, refusal: { reason: r.reason } });
      expect(calls).toEqual([]);
      expect(recorded.map(([st, o]) => [st.stepNo, o.outcome, o.reason])).toEqual([[1, 'refused', r.reason]]);
      expect(p.toolCallsUsed()).toBe(0);
      expect(p.windowUsed()).toBe(0);
      if (r.guard !== 'loop') expect(p.detector.wouldTrip(WF, TOOL, { n: 1 }, LOOP)).toBeUndefined();
      r.lift(p);
      // Budget, window and slice are all 1: the next call fits them and is routed, the one after it is refused.
      const next = p.call({ n: 2 });
      next.stepNo = 0;
      expect(await runPipeline(d, next, { route })).toMatchObject({ kind: 'done', value: 'answer' });
      expect(calls).toEqual([1]);
      expect(next.stepNo).toBe(2);
      const spent = p.call({ n: 3 });
      expect(await runPipeline(d, spent, { route })).toMatchObject({ kind: 'refused', refusal: { data: { limit: 'delegation.budget.toolCalls', used: 1, max: 1 } } });
    });
  }

  it("by one of the entry point's own checks stops the chain's checks and commits", async () => {
    const p = pipeline();
    const { d, recorded } = deps(p);
    const result = await runPipeline(d, p.call({ n: 1 }), { checks: [() => refusal('policy_denied')], route: scripted(ok(1)).route });
    expect(result).toMatchObject({ kind: 'refused', refusal: { reason: 'policy_denied' } });
    expect(recorded).toHaveLength(1);
    expect(p.toolCallsUsed()).toBe(0);
  });

  it('that hides the name is answered as unknown and is not a step: nothing numbered, nothing recorded', async () => {
    const p = pipeline();
    const { d, recorded } = deps(p);
    const hidden: Refusal = { ...refusal('policy_denied'), asUnknown: true };
    const s = p.call({ n: 1 });
    s.stepNo = 0;
    const result = await runPipeline(d, s, { checks: [() => hidden], route: scripted(ok(1)).route });
    expect(result).toEqual({ kind: 'refused', refusal: hidden, recorded: false });
    expect(recorded).toEqual([]);
    expect(s.stepNo).toBe(0);
    expect(p.workflows.nextStep(WF)).toBe(1);
  });
});

describe('the Step pipeline: phases', () => {
  /** A chain that logs each phase, with an optional refusal at one of them. */
  function logged(log: string[], refuseAt?: 'check' | 'commit', asynchronous = false): PhasedChain {
    const wait = <T>(v: T): T | Promise<T> => (asynchronous ? Promise.resolve().then(() => v) : v);
    return {
      check: () => (log.push('check'), wait(refuseAt === 'check' ? refusal('policy_denied') : undefined)),
      commit: () => (log.push('commit'), wait(refuseAt === 'commit' ? refusal('budget_exceeded') : undefined)),
      rollback: () => (log.push('rollback'), wait(undefined)),
      after: (_s, o) => (log.push(`after ${o.outcome} ${o.reason ?? ''}`.trim()), wait(undefined)),
    };
  }

  function run(log: string[], chain: PhasedChain, plan: Partial<StepPlan<string>> = {}, breakers?: BreakerBoard, sharedNumbers = false) {
    const s = step(agent('a'), { workflowId: WF });
    s.stepNo = 0;
    const d: PipelineDeps = {
      chain,
      sinks: [{ record: (st, o) => void log.push(`record ${st.stepNo} ${o.outcome}`) }],
      // A shared workflow store numbers steps with a round trip: its answer is a promise.
      workflows: { nextStep: () => (log.push('number'), sharedNumbers ? Promise.resolve(7) : 7) },
      breakers,
    };
    return runPipeline(d, s, {
      checks: [() => void log.push('own check')],
      route: async (attempt) => (log.push(`route ${attempt}`), ok('answer')),
      ...plan,
    });
  }

  for (const asynchronous of [false, true]) {
    const kind = asynchronous ? 'asynchronous' : 'synchronous';
    it(`runs own checks, chain checks, confirm, commits, numbering, route, after and the record in that order (${kind} phases)`, async () => {
      const log: string[] = [];
      const result = await run(log, logged(log, undefined, asynchronous), { confirm: () => (log.push('confirm'), true) });
      expect(result).toMatchObject({ kind: 'done', value: 'answer', outcome: { outcome: 'ok' } });
      expect(log).toEqual(['own check', 'check', 'confirm', 'commit', 'number', 'route 1', 'after ok', 'record 7 ok']);
    });

    it(`a refusing commit is recorded without after or route (${kind} phases)`, async () => {
      const log: string[] = [];
      expect(await run(log, logged(log, 'commit', asynchronous))).toMatchObject({ kind: 'refused', refusal: { reason: 'budget_exceeded' } });
      expect(log).toEqual(['own check', 'check', 'commit', 'number', 'record 7 refused']);
    });
  }

  it('numbers from a store that answers with a promise, on the routed and on the refused path alike', async () => {
    const log: string[] = [];
    expect(await run(log, logged(log), {}, undefined, true)).toMatchObject({ kind: 'done', value: 'answer' });
    expect(log).toEqual(['own check', 'check', 'commit', 'number', 'route 1', 'after ok', 'record 7 ok']);
    const refused: string[] = [];
    expect(await run(refused, logged(refused, 'commit'), {}, undefined, true)).toMatchObject({ kind: 'refused', recorded: true });
    expect(refused).toEqual(['own check', 'check', 'commit', 'number', 'record 7 refused']);
  });

  it('a store that cannot number the step gives back what the commits took: the call fails with its error and spends nothing', async () => {
    const fails = {
      'a shared store (rejects)': () => Promise.reject(new Error('workflow store down')),
      'an embedded store (throws)': () => {
        throw new Error('workflow store down');
      },
    };
    for (const [what, nextStep] of Object.entries(fails)) {
      for (const rollbackFails of [false, true]) {
        const log: string[] = [];
        const s = step(agent('a'), { workflowId: WF });
        s.stepNo = 0;
        const rollback = () => {
          log.push('rollback');
          if (rollbackFails) throw new Error('counter store down too');
        };
        const d: PipelineDeps = {
          chain: new GuardChain([{ commit: () => void log.push('commit'), rollback }]),
          sinks: [{ record: () => void log.push('record') }],
          workflows: { nextStep },
        };
        const running = runPipeline(d, s, { route: async () => (log.push('route'), ok('never')) });
        await expect(running, what).rejects.toThrow('workflow store down');
        expect(log, what).toEqual(['commit', 'rollback']);
      }
    }
  });

  it('a confirm that finds no such name ends the call before any commit, unnumbered and unrecorded', async () => {
    const log: string[] = [];
    expect(await run(log, logged(log), { confirm: async () => (log.push('confirm'), false) })).toEqual({ kind: 'unknown' });
    expect(log).toEqual(['own check', 'check', 'confirm']);
  });

  it('a route that finds no such name rolls the commits back and records nothing', async () => {
    const log: string[] = [];
    expect(await run(log, logged(log), { route: async () => (log.push('route'), { unknown: true }) })).toEqual({ kind: 'unknown' });
    expect(log).toEqual(['own check', 'check', 'commit', 'number', 'route', 'rollback']);
  });

  it('after and the record see a route that throws as a gateway error, and the error goes on to the entry point', async () => {
    const log: string[] = [];
    const failing = run(log, logged(log), { route: async () => Promise.reject(new Error('boom')) });
    await expect(failing).rejects.toThrow('boom');
    expect(log).toEqual(['own check', 'check', 'commit', 'number', 'after error gateway_error', 'record 7 error']);
  });

  it('after sees the outcome the route reported: error, reason, bytes and tokens', async () => {
    const seen: StepOutcome[] = [];
    const chain = new GuardChain([{ after: (_s, o) => void seen.push(o) }]);
    const s = step(agent('a'));
    const d: PipelineDeps = { chain, sinks: [], workflows: { nextStep: () => 1 }, now: () => s.startedAt + 5 };
    await runPipeline(d, s, { route: async () => ({ value: null, outcome: 'error', reason: 'cancelled', bytes: 10, tokens: 3 }) });
    expect(seen).toEqual([{ outcome: 'error', reason: 'cancelled', durationMs: 5, bytes: 10, tokens: 3 }]);
  });
});

describe('the Step pipeline: retries and the breaker', () => {
  it('tries a transport failure again while the plan allows it, pausing between attempts, and feeds the breaker each time', async () => {
    const p = pipeline({ toolCalls: 5, budget: 5 });
    const breakers = new BreakerBoard({ failureThreshold: 5, now: p.clock.now });
    const { d, recorded, pauses } = deps(p, { breakers });
    const { route, calls } = scripted(unreachable(), unreachable(), ok('third time'));
    const result = await runPipeline(d, p.call({ n: 1 }), { breaker: 'fs', retryable: (attempt) => attempt <= 2, route });
    expect(result).toMatchObject({ kind: 'done', value: 'third time' });
    expect(calls).toEqual([1, 2, 3]);
    expect(pauses).toEqual([1, 2]);
    // Success resets the run of failures: one call is counted, once.
    expect(breakers.get('fs').consecutiveFailures).toBe(0);
    expect(p.toolCallsUsed()).toBe(1);
    expect(recorded.map(([, o]) => o.outcome)).toEqual(['ok']);
  });

  it('stops at the last allowed attempt, at a final answer, when not retryable, and when the caller cancelled', async () => {
    const cases: Array<{ plan: Partial<StepPlan<string>>; answers: Routed<string>[]; attempts: number[] }> = [
      { plan: { retryable: (a) => a <= 1 }, answers: [unreachable()], attempts: [1, 2] },
      { plan: { retryable: () => true }, answers: [unreachable({ final: true })], attempts: [1] },
      { plan: {}, answers: [unreachable()], attempts: [1] },
      { plan: { retryable: () => true, signal: AbortSignal.abort() }, answers: [unreachable()], attempts: [1] },
    ];
    for (const c of cases) {
      const p = pipeline({ toolCalls: 5, budget: 5 });
      const breakers = new BreakerBoard({ failureThreshold: 10, now: p.clock.now });
      const { d, recorded } = deps(p, { breakers });
      const { route, calls } = scripted(...c.answers);
      const result = await runPipeline(d, p.call({ n: 1 }), { breaker: 'fs', route, ...c.plan });
      expect(result).toMatchObject({ kind: 'done', value: 'unreachable', outcome: { outcome: 'error', reason: 'upstream_unavailable' } });
      expect(calls).toEqual(c.attempts);
      expect(breakers.get('fs').consecutiveFailures).toBe(c.attempts.length);
      expect(recorded).toHaveLength(1);
    }
  });

  it('an open circuit refuses after the commits, rolls them back, and lets one probe through once the cooldown passed', async () => {
    const p = pipeline({ toolCalls: 5, budget: 5 });
    const breakers = new BreakerBoard({ failureThreshold: 2, cooldownMs: 1000, now: p.clock.now });
    const { d, recorded } = deps(p, { breakers });
    const failing = scripted(unreachable());
    for (const n of [1, 2]) await runPipeline(d, p.call({ n }), { breaker: 'fs', route: failing.route });
    expect(p.toolCallsUsed()).toBe(2);
    const healthy = scripted(ok('back'));
    const refused = await runPipeline(d, p.call({ n: 3 }), { breaker: 'fs', route: healthy.route });
    expect(refused).toMatchObject({ kind: 'refused', refusal: { reason: 'upstream_unavailable', data: { server: 'fs', breaker: 'open' } } });
    expect(healthy.calls).toEqual([]);
    expect(p.toolCallsUsed()).toBe(2);
    expect(p.windowUsed()).toBe(2);
    expect(recorded.map(([, o]) => o.outcome)).toEqual(['error', 'error', 'refused']);
    p.clock.advance(1000);
    expect(await runPipeline(d, p.call({ n: 4 }), { breaker: 'fs', route: healthy.route })).toMatchObject({ kind: 'done', value: 'back' });
    expect(breakers.get('fs').state).toBe('closed');
  });

  it('a plan without a breaker leaves every circuit alone', async () => {
    const p = pipeline({ toolCalls: 5, budget: 5 });
    const breakers = new BreakerBoard({ failureThreshold: 1, now: p.clock.now });
    const { d } = deps(p, { breakers });
    await runPipeline(d, p.call({ n: 1 }), { route: scripted(unreachable()).route });
    expect(breakers.states()).toEqual({});
  });
});

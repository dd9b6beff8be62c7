// Rolling windows driven through the real limits guard and LimitCounters on a fake clock: when a window refuses,
// what it reports (limit, used, resetAt, retryAfterSeconds), and that calls pass again exactly from that moment,
// also across a close and reopen of data/limits.db.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentManifest } from '../../src/config/types.js';
import { createLimitsGuard, type TeamsConfig } from '../../src/gateway/guards/limits.js';
import type { Refusal, StepKind } from '../../src/gateway/types.js';
import { LimitCounters } from '../../src/limits/counters.js';
import { FakeClock, agent, chained, removeTempDirs, step, tempDir } from './helpers.js';
import { settled } from '../helpers/sync.js';

afterEach(removeTempDirs);

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const ctx = {};
const iso = (ms: number): string => new Date(ms).toISOString();

/** The real counters behind the real limits guard on a fake clock; manifests are looked up live at every step. */
function gatewayLimits(manifests: AgentManifest[], opts: { clock?: FakeClock; teams?: TeamsConfig; dataDir?: string } = {}) {
  const clock = opts.clock ?? new FakeClock();
  const counters = new LimitCounters({ now: clock.now, dataDir: opts.dataDir });
  const live = new Map(manifests.map((m) => [m.id, m]));
  const guard = chained(createLimitsGuard({ counters, teamsConfig: () => opts.teams ?? {}, agentById: (id) => live.get(id) }));
  let n = 0;
  /** One step of `who`, each in a workflow of its own (as from a new session) unless one is named. */
  const call = (who: AgentManifest, kind: StepKind = 'tools/call', workflowId = `wf-${++n}`): Refusal | undefined =>
    guard(step(who, { workflowId, kind }), ctx) as Refusal | undefined;
  return { clock, counters, call, live };
}

/** Calls until one is refused; returns how many passed (at most `max`). */
function passes(call: () => Refusal | undefined, max = 100): number {
  for (let i = 0; i < max; i++) if (call()) return i;
  return max;
}

describe('perMinute through the limits guard', () => {
  it('refuses the fourth call with rate_limited and when it frees up, then lets calls through from exactly then', () => {
    const a = agent('a', { perMinute: { toolCalls: 3 } });
    const { clock, counters, call } = gatewayLimits([a]);
    const start = clock.t;
    for (let i = 0; i < 3; i++) expect(call(a)).toBeUndefined();
    clock.advance(20 * SEC);
    const over = call(a);
    expect(over?.reason).toBe('rate_limited');
    expect(over?.data).toEqual({ limit: 'perMinute.toolCalls', used: 3, max: 3, workflowId: 'wf-4', resetAt: iso(start + MIN), retryAfterSeconds: 40 });
    expect(over?.message).toBe(`The per-minute toolCalls limit of agent a is reached (3 of 3); retry after ${iso(start + MIN)} (in 40 s).`);
    expect(settled(counters.windowUsage('agent', 'a'))?.perMinute.toolCalls).toBe(3);

    clock.t = start + MIN - 1;
    expect(call(a)?.data).toMatchObject({ used: 3, resetAt: iso(start + MIN), retryAfterSeconds: 1 });
    clock.t = start + MIN;
    expect(passes(() => call(a))).toBe(3);
    expect(call(a)?.data).toMatchObject({ limit: 'perMinute.toolCalls', used: 3, resetAt: iso(start + 2 * MIN), retryAfterSeconds: 60 });
  });

  it('a call made mid-second leaves the window when its one-second bucket does', () => {
    const a = agent('a', { perMinute: { calls: 1 } });
    const { clock, call } = gatewayLimits([a]);
    const start = clock.t;
    clock.advance(999);
    expect(call(a)).toBeUndefined();
    expect(call(a)?.data).toMatchObject({ resetAt: iso(start + MIN), retryAfterSeconds: 60 });
    clock.t = start + MIN - 1;
    expect(call(a)?.reason).toBe('rate_limited');
    clock.t = start + MIN;
    expect(call(a)).toBeUndefined();
  });

  it('a call reserved just before the roll stays counted for its own full minute', () => {
    const a = agent('a', { perMinute: { toolCalls: 3 } });
    const { clock, call } = gatewayLimits([a]);
    const start = clock.t;
    expect(call(a)).toBeUndefined();
    expect(call(a)).toBeUndefined();
    clock.t = start + 59 * SEC;
    expect(call(a)).toBeUndefined();
    expect(call(a)?.data).toMatchObject({ used: 3, resetAt: iso(start + MIN), retryAfterSeconds: 1 });

    clock.t = start + MIN;
    expect(passes(() => call(a))).toBe(2);
    expect(call(a)?.data).toMatchObject({ used: 3, resetAt: iso(start + 59 * SEC + MIN), retryAfterSeconds: 59 });
    clock.t = start + 59 * SEC + MIN - 1;
    expect(call(a)?.reason).toBe('rate_limited');
    clock.t = start + 59 * SEC + MIN;
    expect(passes(() => call(a))).toBe(1);
  });

  it('counts across workflows of one agent, not across agents', () => {
    const a = agent('a', { perMinute: { toolCalls: 3 } });
    const b = agent('b', { perMinute: { toolCalls: 3 } });
    const { call } = gatewayLimits([a, b]);
    for (let i = 0; i < 3; i++) expect(call(a)).toBeUndefined();
    expect(call(a, 'tools/call', 'wf-other')?.data).toMatchObject({ limit: 'perMinute.toolCalls', workflowId: 'wf-other' });
    expect(call(b)).toBeUndefined();
  });
});

describe('perHour and perDay boundaries', () => {
  it('perHour refuses with rate_limited until the hour after the oldest call, one-minute buckets', () => {
    const a = agent('a', { perHour: { calls: 2 } });
    const { clock, call } = gatewayLimits([a]);
    const start = clock.t;
    expect(call(a, 'resources/read')).toBeUndefined();
    clock.t = start + 30 * MIN + 30 * SEC;
    expect(call(a, 'prompts/get')).toBeUndefined();
    const over = call(a);
    expect(over?.reason).toBe('rate_limited');
    expect(over?.data).toMatchObject({ limit: 'perHour.calls', used: 2, max: 2, resetAt: iso(start + HOUR), retryAfterSeconds: 1770 });
    clock.t = start + HOUR - 1;
    expect(call(a)?.reason).toBe('rate_limited');
    clock.t = start + HOUR;
    expect(call(a)).toBeUndefined();
    // The second call's minute bucket began at 30 min, so it leaves at 90 min.
    expect(call(a)?.data).toMatchObject({ used: 2, resetAt: iso(start + HOUR + 30 * MIN) });
    clock.t = start + HOUR + 30 * MIN;
    expect(call(a)).toBeUndefined();
  });

  it('perDay is a budget that frees up a day after the oldest 24-minute bucket began', () => {
    const a = agent('a', { perDay: { toolCalls: 2 } });
    const { clock, call } = gatewayLimits([a]);
    const start = clock.t;
    expect(call(a)).toBeUndefined();
    clock.t = start + 23 * MIN;
    expect(call(a)).toBeUndefined();
    clock.t = start + 5 * HOUR;
    const over = call(a);
    expect(over?.reason).toBe('budget_exceeded');
    expect(over?.data).toMatchObject({ limit: 'perDay.toolCalls', used: 2, max: 2, resetAt: iso(start + DAY), retryAfterSeconds: 19 * 3600 });
    expect(over?.message).toBe(`The daily toolCalls limit of agent a is reached (2 of 2); capacity frees up from ${iso(start + DAY)}; an admin can raise limits.perDay.toolCalls in agents.d.`);
    clock.t = start + DAY - 1;
    expect(call(a)?.reason).toBe('budget_exceeded');
    clock.t = start + DAY;
    expect(passes(() => call(a))).toBe(2);
  });
});

describe('team windows', () => {
  it('bind every agent of the team, name the team limit, and free up for all of them at resetAt', () => {
    const a1 = agent('a1', {}, 'ops');
    const a2 = agent('a2', { perMinute: { toolCalls: 100 } }, 'ops');
    const outsider = agent('x', {});
    const { clock, counters, call } = gatewayLimits([a1, a2, outsider], { teams: { ops: { perMinute: { toolCalls: 3 } } } });
    const start = clock.t;
    expect(call(a1)).toBeUndefined();
    clock.advance(10 * SEC);
    expect(call(a2)).toBeUndefined();
    expect(call(a1)).toBeUndefined();
    const over = call(a2);
    expect(over?.reason).toBe('rate_limited');
    expect(over?.data).toMatchObject({ limit: 'team.perMinute.toolCalls', used: 3, max: 3, resetAt: iso(start + MIN), retryAfterSeconds: 50 });
    expect(over?.message).toMatch(/^The per-minute toolCalls limit of team ops is reached \(3 of 3\); retry after /);
    expect(settled(counters.windowUsage('agent', 'a2'))?.perMinute.toolCalls).toBe(1);
    expect(call(outsider)).toBeUndefined();

    clock.t = start + MIN - 1;
    expect(call(a1)?.data).toMatchObject({ limit: 'team.perMinute.toolCalls' });
    clock.t = start + MIN;
    expect(call(a2)).toBeUndefined();
    expect(call(a1)?.data).toMatchObject({ limit: 'team.perMinute.toolCalls', resetAt: iso(start + 10 * SEC + MIN) });
  });
});

describe('the reported reset time', () => {
  it('is when the call passes even when the window holds more than the limit (tokens reported after the fact)', () => {
    const a = agent('a', { perMinute: { tokens: 1000 } });
    const { clock, counters, call } = gatewayLimits([a]);
    const start = clock.t;
    expect(call(a, 'model/call', 'wf-m')).toBeUndefined();
    counters.addTokens('wf-m', 'a', undefined, 100);
    clock.t = start + 10 * SEC;
    expect(call(a, 'model/call', 'wf-m')).toBeUndefined();
    counters.addTokens('wf-m', 'a', undefined, 1000);
    const over = call(a, 'model/call', 'wf-m');
    expect(over?.data).toMatchObject({ limit: 'perMinute.tokens', used: 1100, max: 1000, resetAt: iso(start + 10 * SEC + MIN) });
    clock.t = start + MIN;
    expect(call(a, 'model/call', 'wf-m')?.data).toMatchObject({ used: 1000, resetAt: iso(start + 10 * SEC + MIN) });
    clock.t = start + 10 * SEC + MIN;
    expect(call(a, 'model/call', 'wf-m')).toBeUndefined();
  });

  it('is when the call passes after the limit is lowered below what the window holds', () => {
    const { clock, call, live } = gatewayLimits([agent('a', { perMinute: { calls: 10 } })]);
    const start = clock.t;
    for (const at of [0, 10, 20]) {
      clock.t = start + at * SEC;
      expect(call(live.get('a')!)).toBeUndefined();
    }
    live.set('a', agent('a', { perMinute: { calls: 2 } }));
    const over = call(live.get('a')!);
    expect(over?.data).toMatchObject({ limit: 'perMinute.calls', used: 3, max: 2, resetAt: iso(start + 10 * SEC + MIN) });
    clock.t = start + MIN;
    expect(call(live.get('a')!)?.reason).toBe('rate_limited');
    clock.t = start + 10 * SEC + MIN;
    expect(call(live.get('a')!)).toBeUndefined();
  });

  it('is absent for a limit of 0, which no wait can satisfy', () => {
    const a = agent('a', { perMinute: { toolCalls: 0 } });
    const { call } = gatewayLimits([a]);
    const over = call(a);
    expect(over?.reason).toBe('rate_limited');
    expect(over?.data).toEqual({ limit: 'perMinute.toolCalls', used: 0, max: 0, workflowId: 'wf-1' });
    expect(over?.message).toBe('The per-minute toolCalls limit of agent a is 0, so waiting will not help; an admin can raise limits.perMinute.toolCalls in agents.d.');
  });
});

describe('windows across a reopen of data/limits.db', () => {
  it('a used-up minute is still used up after a reopen before resetAt, and free from resetAt', () => {
    const dataDir = join(tempDir(), 'data');
    const clock = new FakeClock();
    const start = clock.t;
    const a = agent('a', { perMinute: { toolCalls: 3 } }, 'ops');
    const teams: TeamsConfig = { ops: { perHour: { toolCalls: 5 } } };

    const first = gatewayLimits([a], { clock, teams, dataDir });
    clock.t = start + 59 * SEC;
    for (let i = 0; i < 3; i++) expect(first.call(a)).toBeUndefined();
    expect(first.call(a)?.data).toMatchObject({ limit: 'perMinute.toolCalls', used: 3, resetAt: iso(start + 59 * SEC + MIN) });
    first.counters.close();
    expect(existsSync(join(dataDir, 'limits.db'))).toBe(true);

    clock.t = start + 59 * SEC + MIN - 1;
    const second = gatewayLimits([a], { clock, teams, dataDir });
    expect(second.call(a)?.data).toMatchObject({ limit: 'perMinute.toolCalls', used: 3, resetAt: iso(start + 59 * SEC + MIN), retryAfterSeconds: 1 });
    second.counters.close();

    clock.t = start + 59 * SEC + MIN;
    const third = gatewayLimits([a], { clock, teams, dataDir });
    expect(third.call(a)).toBeUndefined();
    expect(third.call(a)).toBeUndefined();
    // The team's hour still holds the three calls made before the first close.
    const team = third.call(a);
    expect(team?.data).toMatchObject({ limit: 'team.perHour.toolCalls', used: 5, max: 5, resetAt: iso(start + HOUR) });
    third.counters.close();
  });
});

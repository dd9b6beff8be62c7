// Rolling-window limits through a real SDK client and gateway: perMinute refuses with rate_limited (limit, used,
// resetAt, retryAfterSeconds) across sessions of one agent; perDay and team windows refuse with their own names;
// counters survive a restart of the gateway on the same data dir. How windows roll over with time is driven on a
// fake clock in test/limits/windows.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { connectClient } from '../helpers/gateway.js';
import {
  call,
  fixtureHome,
  launch,
  launchFixtureHome,
  localAgent,
  refusalOf,
  runTag,
  stopEverything,
  upstreamCalls,
  upstreamCallsWithText,
  type GatewayHome,
} from '../helpers/audit-harness.js';

const run = runTag();

afterAll(stopEverything);

describe('perMinute', () => {
  it('refuses the fourth call with rate_limited across sessions, saying which limit, how much is used and when to retry', async () => {
    const { home, gw } = await launchFixtureHome(localAgent({ perMinute: { toolCalls: 3 } }));
    const client = await connectClient(gw.mcpUrl);
    const firstAt = Date.now();
    for (let i = 1; i <= 3; i++) expect((await call(client, 'fx__echo', { text: `pm${i}-${run}` })).ok).toBe(true);
    const before = Date.now();
    const over = refusalOf(await call(client, 'fx__echo', { text: `pm4-${run}` }));
    const after = Date.now();
    expect(over.code).toBe(-32030);
    expect(over.data).toMatchObject({ reason: 'rate_limited', limit: 'perMinute.toolCalls', used: 3, max: 3 });
    expect(over.message).toMatch(
      `The per-minute toolCalls limit of agent local is reached (3 of 3); retry after ${over.data.resetAt} (in ${over.data.retryAfterSeconds} s).`,
    );
    // Capacity frees up when the first call's one-second bucket leaves the window, a minute after that bucket began.
    const resetAt = Date.parse(over.data.resetAt as string);
    expect(resetAt).toBeGreaterThanOrEqual(Math.floor(firstAt / 1000) * 1000 + 60_000);
    expect(resetAt).toBeLessThanOrEqual(before + 60_000);
    expect(over.data.retryAfterSeconds).toBeGreaterThanOrEqual(Math.max(1, Math.ceil((resetAt - after) / 1000)));
    expect(over.data.retryAfterSeconds).toBeLessThanOrEqual(Math.ceil((resetAt - before) / 1000));
    expect(upstreamCallsWithText(home.statsFile, `pm4-${run}`)).toHaveLength(0);

    // The window is the agent's, not the workflow's: a new session is refused by the same window.
    const other = await connectClient(gw.mcpUrl);
    const otherOver = refusalOf(await call(other, 'fx__echo', { text: `pm5-${run}` }));
    expect(otherOver.code).toBe(-32030);
    expect(otherOver.data).toMatchObject({ reason: 'rate_limited', limit: 'perMinute.toolCalls', used: 3, max: 3, resetAt: over.data.resetAt });
    expect(otherOver.data.workflowId).not.toBe(over.data.workflowId);
    expect(upstreamCallsWithText(home.statsFile, `pm5-${run}`)).toHaveLength(0);
    expect(upstreamCalls(home.statsFile, 'echo')).toHaveLength(3);
  });
});

type Refusal = ReturnType<typeof refusalOf>;

/**
 * Use up a window on a first gateway on `home` (echo calls `${tag}1` to `${tag}${n}` pass; `${tag}${n + 1}` is refused
 * and handed to `checkOver` before the stop), restart on the same home and make call `${tag}${n + 2}` there.
 */
async function useUpThenRestart(home: GatewayHome, tag: string, n: number, checkOver: (over: Refusal) => void): Promise<{ over: Refusal; stillOver: Refusal }> {
  const first = await launch(home);
  const client = await connectClient(first.mcpUrl);
  for (let i = 1; i <= n; i++) expect((await call(client, 'fx__echo', { text: `${tag}${i}-${run}` })).ok).toBe(true);
  const over = refusalOf(await call(client, 'fx__echo', { text: `${tag}${n + 1}-${run}` }));
  checkOver(over);
  await first.stop();

  const second = await launch(home);
  const again = await connectClient(second.mcpUrl);
  const stillOver = refusalOf(await call(again, 'fx__echo', { text: `${tag}${n + 2}-${run}` }));
  return { over, stillOver };
}

describe('perDay and teams', () => {
  it('a used-up perDay window is still used up after the gateway restarts on the same data dir', async () => {
    const home = fixtureHome(localAgent({ perDay: { toolCalls: 3 } }));
    const { over, stillOver } = await useUpThenRestart(home, 'pd', 3, (over) => {
      expect(over.data).toMatchObject({ reason: 'budget_exceeded', limit: 'perDay.toolCalls', used: 3, max: 3 });
    });
    expect(stillOver.code).toBe(-32030);
    expect(stillOver.data).toMatchObject({ reason: 'budget_exceeded', limit: 'perDay.toolCalls', used: 3, max: 3 });
    expect(stillOver.data.workflowId).not.toBe(over.data.workflowId);
    expect(upstreamCallsWithText(home.statsFile, `pd4-${run}`)).toHaveLength(0);
    expect(upstreamCallsWithText(home.statsFile, `pd5-${run}`)).toHaveLength(0);
    expect(upstreamCalls(home.statsFile, 'echo')).toHaveLength(3);
  });

  it('a perHour window survives a restart too, and a team window binds the agents of that team', async () => {
    const home = fixtureHome(localAgent({ perHour: { calls: 10 } }, { team: 'ops' }), { teams: { ops: { perHour: { toolCalls: 2 } } } });
    const { stillOver } = await useUpThenRestart(home, 'team', 2, (over) => {
      expect(over.data).toMatchObject({ reason: 'rate_limited', limit: 'team.perHour.toolCalls', used: 2, max: 2 });
    });
    expect(stillOver.data).toMatchObject({ reason: 'rate_limited', limit: 'team.perHour.toolCalls', used: 2 });
    expect(upstreamCalls(home.statsFile, 'echo')).toHaveLength(2);
  });
});

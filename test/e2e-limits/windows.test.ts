// Rolling-window limits through a real SDK client (issue 5): perMinute refuses with rate_limited (limit, used, resetAt)
// across workflows and rolls over; perDay and team windows refuse with their own names; counters survive a restart of
// the gateway on the same data dir.
import { afterAll, describe, expect, it } from 'vitest';
import { connectClient, waitFor } from '../helpers/gateway.js';
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
  it('refuses the fourth call with rate_limited across sessions, then lets calls through once the window rolls', async () => {
    const { home, gw } = await launchFixtureHome(localAgent({ perMinute: { toolCalls: 3 } }));
    const client = await connectClient(gw.mcpUrl);
    for (let i = 1; i <= 3; i++) expect((await call(client, 'fx__echo', { text: `pm${i}-${run}` })).ok).toBe(true);
    const over = refusalOf(await call(client, 'fx__echo', { text: `pm4-${run}` }));
    expect(over.code).toBe(-32030);
    expect(over.data).toMatchObject({ reason: 'rate_limited', limit: 'perMinute.toolCalls', used: 3, max: 3 });
    const resetAt = Date.parse(over.data.resetAt as string);
    expect(resetAt).toBeGreaterThan(Date.now());
    expect(resetAt).toBeLessThanOrEqual(Date.now() + 61_000);
    expect(over.data.retryAfterSeconds).toBeGreaterThan(0);
    expect(upstreamCallsWithText(home.statsFile, `pm4-${run}`)).toHaveLength(0);

    // The window is the agent's, not the workflow's.
    const other = await connectClient(gw.mcpUrl);
    const otherOver = refusalOf(await call(other, 'fx__echo', { text: `pm5-${run}` }));
    expect(otherOver.data).toMatchObject({ reason: 'rate_limited', limit: 'perMinute.toolCalls' });
    expect(upstreamCallsWithText(home.statsFile, `pm5-${run}`)).toHaveLength(0);

    // Windows roll over: poll (no sleep) until a call passes, which must not happen before resetAt.
    let n = 0;
    const passed = await waitFor(
      async () => {
        const text = `roll${n++}-${run}`;
        const r = await call(client, 'fx__echo', { text });
        return r.ok ? { at: Date.now(), text } : undefined;
      },
      { timeoutMs: 80_000, intervalMs: 500, what: 'the per-minute window to roll over' },
    );
    expect(passed.at).toBeGreaterThanOrEqual(resetAt - 1000);
    expect(upstreamCallsWithText(home.statsFile, passed.text)).toHaveLength(1);
    // Every refused probe stayed away from the upstream.
    expect(upstreamCalls(home.statsFile, 'echo').filter((l) => String((l.params?.arguments as { text?: string })?.text).startsWith('roll'))).toHaveLength(1);
  }, 120_000);
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

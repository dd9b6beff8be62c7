// Through a real gateway and the stats-recording fixture: a call to an unknown tool, a call the loop guard refuses
// after the limits guard would have let it through, and a call an open circuit refuses spend neither the workflow
// budget nor the per-minute window.
import { describe, expect, it } from 'vitest';
import { connectClient, startFixture } from '../helpers/gateway.js';
import {
  admin,
  call,
  fixtureGatewaySuite,
  launch,
  localAgent,
  makeHome,
  refusalOf,
  runTag,
  statsFixture,
  upstreamCallsWithText,
  type WorkflowView,
} from '../helpers/audit-harness.js';

/** Consecutive failures that open a circuit (the breaker's default, src/limits/breaker.ts). */
const THRESHOLD = 5;

const run = runTag();
// Three tool calls per workflow, six per minute for the agent: the two workflows below use them up exactly.
const suite = fixtureGatewaySuite(localAgent({ workflow: { toolCalls: 3 }, perMinute: { toolCalls: 6 }, loop: { sameCall: 1, windowSeconds: 60 } }));

describe('refused calls spend nothing', () => {
  it('calls to unknown tools leave the whole workflow budget for the calls that exist', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    for (const name of ['fx__no_such_tool', 'nosuchserver__echo', 'echo']) {
      const unknown = refusalOf(await call(client, name, { text: `unknown-${run}` }));
      expect(unknown.code).toBe(-32602);
      expect(unknown.message).toContain(`Unknown tool: ${name}`);
    }
    for (let i = 0; i < 3; i++) expect((await call(client, 'fx__echo', { text: `known-${run}-${i}` })).ok).toBe(true);
    const spent = refusalOf(await call(client, 'fx__echo', { text: `known-${run}-3` }));
    expect(spent.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.toolCalls', used: 3, max: 3 });
  });

  it('a call the loop guard refuses counts against neither the workflow budget nor the per-minute window', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    const text = `loop-${run}`;
    expect((await call(client, 'fx__echo', { text })).ok).toBe(true);
    const tripped = refusalOf(await call(client, 'fx__echo', { text }));
    expect(tripped.data.reason).toBe('loop_detected');
    expect(upstreamCallsWithText(suite.home.statsFile, text)).toHaveLength(1);
    const wf = tripped.data.workflowId as string;
    const resumed = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}/resume`, 'POST');
    expect(resumed.status).toBe(200);

    // One call spent of three: two more fit the workflow, and they fill the agent's window of six exactly.
    expect((await call(client, 'fx__echo', { text: `${text}-b` })).ok).toBe(true);
    expect((await call(client, 'fx__echo', { text: `${text}-c` })).ok).toBe(true);
    const budget = refusalOf(await call(client, 'fx__echo', { text: `${text}-d` }));
    expect(budget.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.toolCalls', used: 3, max: 3, workflowId: wf });

    const fresh = await connectClient(suite.gw.mcpUrl);
    const window = refusalOf(await call(fresh, 'fx__echo', { text: `${text}-e` }));
    expect(window.data).toMatchObject({ reason: 'rate_limited', limit: 'perMinute.toolCalls', used: 6, max: 6 });
  });
});

describe('an open circuit', () => {
  it('refuses without spending: the calls it refused are still in the workflow budget', async () => {
    const up = await startFixture('http', []);
    // One call that works, THRESHOLD that fail (they count, as calls that were made do), then two that fit.
    const budget = 1 + THRESHOLD + 2;
    const home = makeHome({
      servers: (h) => ({ up: { url: up.url, transport: 'http', timeoutMs: 20_000 }, fx: statsFixture(h) }),
      agents: { local: localAgent({ workflow: { toolCalls: budget } }) },
    });
    const gw = await launch(home);
    const client = await connectClient(gw.mcpUrl);
    expect((await call(client, 'up__echo', { text: 'before' })).ok).toBe(true);
    await up.stop();
    for (let i = 0; i < THRESHOLD; i++) expect(refusalOf(await call(client, 'up__echo', { text: `down-${i}` }, { timeoutMs: 30_000 })).data.breaker).not.toBe('open');
    for (let i = 0; i < 4; i++) expect(refusalOf(await call(client, 'up__echo', { text: `open-${i}` })).data).toMatchObject({ reason: 'upstream_unavailable', breaker: 'open' });
    expect((await call(client, 'fx__echo', { text: `${run}-1` })).ok).toBe(true);
    expect((await call(client, 'fx__echo', { text: `${run}-2` })).ok).toBe(true);
    const spent = refusalOf(await call(client, 'fx__echo', { text: `${run}-3` }));
    expect(spent.data).toMatchObject({ reason: 'budget_exceeded', limit: 'workflow.toolCalls', used: budget, max: budget });
  });
});

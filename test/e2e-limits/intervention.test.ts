// Workflow intervention through the admin API (issue 5): pause refuses the next call with workflow_paused (it never
// reaches the upstream) while an in-flight call finishes; resume lets calls through again; kill cancels the in-flight
// upstream call and ends the workflow's sessions.
import { describe, expect, it } from 'vitest';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, rawPost, waitFor, waitForStat } from '../helpers/gateway.js';
import {
  admin,
  allAudit,
  call,
  fixtureGatewaySuite,
  localAgent,
  runTag,
  upstreamCalls,
  upstreamCallsWithText,
  workflowOfMarker,
  type CallOutcome,
  type WorkflowView,
} from '../helpers/audit-harness.js';

const run = runTag();
const suite = fixtureGatewaySuite(localAgent({}, { canSetWorkflow: true }));

/** Wait until the upstream has received a `slow` call whose ms argument is `ms` (our marker for that call). */
function slowReceived(ms: number): Promise<unknown> {
  return waitFor(() => upstreamCalls(suite.home.statsFile, 'slow').some((l) => (l.params?.arguments as { ms?: number })?.ms === ms), {
    what: `the upstream to receive slow(${ms})`,
  });
}

describe('pause and resume', () => {
  it('a paused workflow refuses its next call before the upstream; an in-flight call finishes; resume lets calls through', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    expect((await call(client, 'fx__echo', { text: `p1-${run}` })).ok).toBe(true);
    const wf = await workflowOfMarker(suite.gw.url, `p1-${run}`);

    // An in-flight call when the pause lands still completes.
    const slowMs = 1501;
    const inFlight = call(client, 'fx__slow', { ms: slowMs, steps: 3 });
    await slowReceived(slowMs);
    const paused = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}/pause`, 'POST', { why: 'looking into it' });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id: wf, state: 'paused', why: 'looking into it' });
    const finished = await inFlight;
    expect(finished.ok, JSON.stringify(finished)).toBe(true);

    const refused = await call(client, 'fx__echo', { text: `p2-${run}` });
    expect(!refused.ok && [refused.code, refused.data.reason, refused.data.workflowId]).toEqual([-32030, 'workflow_paused', wf]);
    expect(upstreamCallsWithText(suite.home.statsFile, `p2-${run}`)).toHaveLength(0);
    expect((await admin<{ workflows: WorkflowView[] }>(suite.gw.url, '/workflows?state=paused')).body.workflows.map((w) => w.id)).toContain(wf);

    const resumed = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}/resume`, 'POST');
    expect(resumed.status).toBe(200);
    expect(resumed.body.state).toBe('active');
    expect((await call(client, 'fx__echo', { text: `p3-${run}` })).ok).toBe(true);
    expect(upstreamCallsWithText(suite.home.statsFile, `p3-${run}`)).toHaveLength(1);

    const records = await allAudit(suite.gw.url, `workflowId=${wf}`);
    expect(records.map((r) => [r.tool, r.outcome, r.reason]).reverse()).toEqual([
      ['echo', 'ok', null],
      ['slow', 'ok', null],
      ['echo', 'refused', 'workflow_paused'],
      ['echo', 'ok', null],
    ]);
  });

  it('answers 404 for an unknown workflow and 409 for an illegal transition', async () => {
    expect((await admin(suite.gw.url, '/workflows/no-such-workflow/pause', 'POST')).status).toBe(404);
    const client = await connectClient(suite.gw.mcpUrl);
    expect((await call(client, 'fx__echo', { text: `k0-${run}` })).ok).toBe(true);
    const wf = await workflowOfMarker(suite.gw.url, `k0-${run}`);
    expect((await admin(suite.gw.url, `/workflows/${wf}/kill`, 'POST')).status).toBe(200);
    expect((await admin(suite.gw.url, `/workflows/${wf}/resume`, 'POST')).status).toBe(409);
    expect((await admin(suite.gw.url, `/workflows/${wf}/explode`, 'POST')).status).toBe(404);
  });
});

describe('kill', () => {
  it('cancels the in-flight upstream call and ends the session', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
    expect(sessionId).toBeTruthy();
    expect((await call(client, 'fx__echo', { text: `k1-${run}` })).ok).toBe(true);
    const wf = await workflowOfMarker(suite.gw.url, `k1-${run}`);

    const slowMs = 30_017;
    const started = Date.now();
    const inFlight: Promise<CallOutcome> = call(client, 'fx__slow', { ms: slowMs, steps: 30 });
    await slowReceived(slowMs);
    const killed = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}/kill`, 'POST');
    expect(killed.status).toBe(200);
    expect(killed.body.state).toBe('killed');

    // The call ends long before the upstream would have finished it, and not as a success.
    const outcome = await inFlight;
    expect(Date.now() - started).toBeLessThan(slowMs / 2);
    expect(outcome.ok && !outcome.result.isError).toBe(false);
    // The upstream saw the cancellation.
    await waitForStat(suite.home.statsFile, (l) => l.kind === 'event' && l.method === 'cancelled' && l.tool === 'slow', {
      what: 'the upstream to record the cancelled slow call',
    });

    // The session is gone: its next request is 404.
    const res = await rawPost(suite.gw.mcpUrl, sessionId, { jsonrpc: '2.0', id: 99, method: 'tools/list', params: {} });
    expect(res.status).toBe(404);
    await res.text();
    expect((await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}`)).body.state).toBe('killed');

    // A killed workflow stays killed: joining it is refused too.
    const joined = await connectClient(suite.gw.mcpUrl, { headers: { 'x-workflow-id': wf } });
    const refused = await call(joined, 'fx__echo', { text: `k2-${run}` });
    expect(!refused.ok && refused.data).toMatchObject({ reason: 'workflow_paused', state: 'killed' });
    expect(upstreamCallsWithText(suite.home.statsFile, `k2-${run}`)).toHaveLength(0);
  });
});

// Loop detection through a real SDK client (issue 5): the same tool with the same canonical arguments (key order
// ignored) more than sameCall times trips loop_detected; an A,B,A,B… cycle trips at the configured `cycle`; the
// workflow becomes `tripped` with a why an admin can read, refuses further calls, and resumes cleanly.
import { describe, expect, it } from 'vitest';
import { connectClient } from '../helpers/gateway.js';
import {
  admin,
  allAudit,
  call,
  fixtureGatewaySuite,
  localAgent,
  refusalOf,
  runTag,
  upstreamCalls,
  upstreamCallsWithText,
  type WorkflowView,
} from '../helpers/audit-harness.js';

const run = runTag();
const suite = fixtureGatewaySuite(localAgent({ loop: { sameCall: 3, windowSeconds: 60, cycle: 2 } }));

describe('same call repeated', () => {
  it('the fourth identical call (keys in any order) is refused with loop_detected and trips the workflow', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    const text = `same-${run}`;
    // Same arguments, different key order and nesting order: one canonical call.
    expect((await call(client, 'fx__echo', { text, opts: { a: 1, b: [1, 2] } })).ok).toBe(true);
    expect((await call(client, 'fx__echo', { opts: { b: [1, 2], a: 1 }, text })).ok).toBe(true);
    // A different value is a different call.
    expect((await call(client, 'fx__echo', { text, opts: { a: 2, b: [1, 2] } })).ok).toBe(true);
    expect((await call(client, 'fx__echo', { opts: { a: 1, b: [1, 2] }, text })).ok).toBe(true);
    const tripped = refusalOf(await call(client, 'fx__echo', { text, opts: { b: [1, 2], a: 1 } }));
    expect(tripped.code).toBe(-32030);
    expect(tripped.data.reason).toBe('loop_detected');
    expect(tripped.data.count).toBe(4);
    expect(tripped.data.call).toMatchObject({ tool: 'fx__echo', args: { text, opts: { a: 1, b: [1, 2] } } });
    const wf = tripped.data.workflowId as string;
    expect(upstreamCallsWithText(suite.home.statsFile, text)).toHaveLength(4);

    // The admin sees the tripped workflow and why.
    const { body } = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}`);
    expect(body.state).toBe('tripped');
    expect(body.why).toMatch(/loop detected/i);
    expect(body.why).toContain('fx__echo');
    const list = await admin<{ workflows: WorkflowView[] }>(suite.gw.url, '/workflows?state=tripped');
    expect(list.body.workflows.some((w) => w.id === wf)).toBe(true);

    // A tripped workflow makes no further calls, of any kind, until resumed.
    const stopped = refusalOf(await call(client, 'fx__add', { a: 1, b: 1 }));
    expect(stopped.data).toMatchObject({ reason: 'workflow_paused', workflowId: wf, state: 'tripped' });
    const addsBefore = upstreamCalls(suite.home.statsFile, 'add').length;
    expect(addsBefore).toBe(0);

    const records = await allAudit(suite.gw.url, `workflowId=${wf}`);
    expect(records.map((r) => [r.step, r.outcome, r.reason]).reverse()).toEqual([
      [1, 'ok', null],
      [2, 'ok', null],
      [3, 'ok', null],
      [4, 'ok', null],
      [5, 'refused', 'loop_detected'],
      [6, 'refused', 'workflow_paused'],
    ]);

    // Resume: the loop history starts afresh, so the same call works again.
    const resumed = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}/resume`, 'POST');
    expect(resumed.status).toBe(200);
    expect(resumed.body.state).toBe('active');
    expect((await call(client, 'fx__echo', { text, opts: { a: 1, b: [1, 2] } })).ok).toBe(true);
    expect(upstreamCallsWithText(suite.home.statsFile, text)).toHaveLength(5);
  });

  it('identical calls in different workflows do not add up', async () => {
    const text = `separate-${run}`;
    for (let s = 0; s < 2; s++) {
      const client = await connectClient(suite.gw.mcpUrl);
      for (let i = 0; i < 3; i++) expect((await call(client, 'fx__echo', { text })).ok).toBe(true);
    }
    expect(upstreamCallsWithText(suite.home.statsFile, text)).toHaveLength(6);
  });
});

describe('short cycles', () => {
  it('A,B,A,B,A,B trips at the third repetition with cycle: 2, below sameCall', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    const a = { name: 'fx__echo', args: { text: `cycle-${run}` } };
    const b = { name: 'fx__add', args: { a: 40, b: 2 } };
    const addsBefore = upstreamCalls(suite.home.statsFile, 'add').length;
    for (const c of [a, b, a, b, a]) expect((await call(client, c.name, c.args)).ok).toBe(true);
    const tripped = refusalOf(await call(client, b.name, b.args));
    expect(tripped.code).toBe(-32030);
    expect(tripped.data.reason).toBe('loop_detected');
    expect(tripped.data.pattern).toEqual([
      { tool: 'fx__echo', args: a.args },
      { tool: 'fx__add', args: b.args },
    ]);
    expect(upstreamCallsWithText(suite.home.statsFile, a.args.text)).toHaveLength(3);
    expect(upstreamCalls(suite.home.statsFile, 'add').length - addsBefore).toBe(2);

    const wf = tripped.data.workflowId as string;
    const { body } = await admin<WorkflowView>(suite.gw.url, `/workflows/${wf}`);
    expect(body.state).toBe('tripped');
    expect(body.why).toMatch(/cycle/);
  });

  it('a varied sequence of the same tools does not trip', async () => {
    const client = await connectClient(suite.gw.mcpUrl);
    for (let i = 0; i < 8; i++) {
      expect((await call(client, 'fx__echo', { text: `varied-${i}-${run}` })).ok).toBe(true);
      expect((await call(client, 'fx__add', { a: i, b: 1 })).ok).toBe(true);
    }
  });
});

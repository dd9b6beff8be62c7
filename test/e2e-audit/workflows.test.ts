// Workflows and the audit trail through a real gateway process (issue 4): a session making several calls, some refused,
// read back through the admin API in order with outcomes, reasons and timings; joining a workflow; filters and paging
// on /workflows and /audit; the JSON-lines export; /metrics; the OpenAPI document; one log line per step.
import { describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, waitFor } from '../helpers/gateway.js';
import {
  admin,
  allAudit,
  call,
  fixtureGatewaySuite,
  localAgent,
  metricValue,
  metricsText,
  runTag,
  upstreamCalls,
  upstreamCallsWithText,
  type AuditRecordView,
} from '../helpers/audit-harness.js';

interface StepView {
  step: number;
  parentStep: number | null;
  agent: string;
  server: string | null;
  tool: string;
  outcome: string;
  reason: string | null;
  startedAt: string;
  durationMs: number;
}
interface WorkflowView {
  id: string;
  agent: string;
  state: string;
  startedAt: string;
  steps: number;
  why?: string | null;
}
interface WorkflowTree {
  id: string;
  agent: string;
  state: string;
  stepCount: number;
  steps: StepView[];
}
interface WorkflowList {
  workflows: WorkflowView[];
  nextCursor: string | null;
}

const run = runTag();
const suite = fixtureGatewaySuite(
  localAgent({ workflow: { toolCalls: 3 } }, { tools: { allow: ['*'], deny: ['fx__delete_record'] }, canSetWorkflow: true }),
);
/** The first session's workflow: echo, unknown, add, hidden, fail, echo (refused by the toolCalls budget). */
let wfA: string;

async function terminate(client: Client): Promise<void> {
  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  await client.close();
}

async function allWorkflows(query: string, limit: number): Promise<{ pages: WorkflowView[][]; all: WorkflowView[] }> {
  const pages: WorkflowView[][] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 500; i++) {
    const q: string = `/workflows?${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { status, body } = await admin<WorkflowList>(suite.gw.url, q);
    expect(status, JSON.stringify(body)).toBe(200);
    pages.push(body.workflows);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  return { pages, all: pages.flat() };
}

describe('a session with several calls, some refused, read back through the admin API', () => {
  it('records ok, error and refused steps in order, with timings', async () => {
    const client = await connectClient(suite.gw.mcpUrl, { name: 'wf-a' });
    expect((await call(client, 'fx__echo', { text: `a1-${run}` })).ok).toBe(true);
    expect((await call(client, 'fx__add', { a: 2, b: 3 })).ok).toBe(true);
    const failed = await call(client, 'fx__fail');
    expect(failed.ok && failed.result.isError).toBe(true);

    // The fourth tool call crosses limits.workflow.toolCalls = 3.
    const refused = await call(client, 'fx__echo', { text: `a4-${run}` });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.code).toBe(-32030);
    expect(refused.data.reason).toBe('budget_exceeded');
    expect(typeof refused.data.workflowId).toBe('string');
    wfA = refused.data.workflowId as string;
    expect(upstreamCallsWithText(suite.home.statsFile, `a4-${run}`)).toHaveLength(0);
    expect(upstreamCallsWithText(suite.home.statsFile, `a1-${run}`)).toHaveLength(1);

    const { status, body: tree } = await admin<WorkflowTree>(suite.gw.url, `/workflows/${wfA}`);
    expect(status).toBe(200);
    expect(tree).toMatchObject({ id: wfA, agent: 'local', state: 'active', stepCount: 4 });
    expect(tree.steps.map((s) => [s.step, s.server, s.tool, s.outcome, s.reason])).toEqual([
      [1, 'fx', 'echo', 'ok', null],
      [2, 'fx', 'add', 'ok', null],
      [3, 'fx', 'fail', 'error', null],
      [4, 'fx', 'echo', 'refused', 'budget_exceeded'],
    ]);
    for (const s of tree.steps) {
      expect(s.agent).toBe('local');
      expect(Number.isFinite(s.durationMs) && s.durationMs >= 0).toBe(true);
      expect(Number.isNaN(Date.parse(s.startedAt))).toBe(false);
    }
    const starts = tree.steps.map((s) => Date.parse(s.startedAt));
    expect([...starts].sort((x, y) => x - y)).toEqual(starts);

    const listed = await admin<WorkflowList>(suite.gw.url, '/workflows?agent=local');
    expect(listed.body.workflows.find((w) => w.id === wfA)).toMatchObject({ id: wfA, agent: 'local', state: 'active', steps: 4 });

    await terminate(client);
    await waitFor(async () => (await admin<WorkflowView>(suite.gw.url, `/workflows/${wfA}`)).body.state === 'done', { what: 'workflow done after DELETE' });
  });

  it('unknown and hidden tools are answered as unknown, are not steps, use no budget and never reach the upstream', async () => {
    const client = await connectClient(suite.gw.mcpUrl, { name: 'wf-u' });
    const first = await call(client, 'fx__echo', { text: `u1-${run}` });
    expect(first.ok).toBe(true);

    const unknown = await call(client, 'fx__nope', { text: `nope-${run}` });
    expect(!unknown.ok && unknown.code).toBe(-32602);
    // Denied by local.yaml: answered exactly like a tool that does not exist.
    const hidden = await call(client, 'fx__delete_record', { table: 'users', id: `hidden-${run}` });
    expect(!hidden.ok && hidden.code).toBe(-32602);
    expect(!hidden.ok && hidden.message.replace('delete_record', 'nope')).toBe(!unknown.ok && unknown.message);

    // Neither used the budget of 3 tool calls.
    expect((await call(client, 'fx__echo', { text: `u2-${run}` })).ok).toBe(true);
    const third = await call(client, 'fx__echo', { text: `u3-${run}` });
    expect(third.ok).toBe(true);
    const fourth = await call(client, 'fx__echo', { text: `u4-${run}` });
    expect(!fourth.ok && fourth.data.reason).toBe('budget_exceeded');
    const wf = !fourth.ok ? (fourth.data.workflowId as string) : '';

    expect(upstreamCalls(suite.home.statsFile, 'nope')).toHaveLength(0);
    expect(upstreamCalls(suite.home.statsFile, 'delete_record')).toHaveLength(0);
    const { body: tree } = await admin<WorkflowTree>(suite.gw.url, `/workflows/${wf}`);
    expect(tree.steps.map((s) => [s.step, s.tool, s.outcome])).toEqual([
      [1, 'echo', 'ok'],
      [2, 'echo', 'ok'],
      [3, 'echo', 'ok'],
      [4, 'echo', 'refused'],
    ]);
    expect(tree.stepCount).toBe(4);
  });

  it('a second session joining by X-Workflow-Id continues the same workflow and numbering', async () => {
    const wf = `wf-join-${run}`;
    const root = await connectClient(suite.gw.mcpUrl, { name: 'root', headers: { 'x-workflow-id': wf } });
    expect((await call(root, 'fx__echo', { text: `root-${run}` })).ok).toBe(true);
    const child = await connectClient(suite.gw.mcpUrl, { name: 'child', headers: { 'x-workflow-id': wf } });
    expect((await call(child, 'fx__echo', { text: `child-${run}` })).ok).toBe(true);
    expect((await call(root, 'fx__add', { a: 1, b: 1 })).ok).toBe(true);

    const { body: tree } = await admin<WorkflowTree>(suite.gw.url, `/workflows/${wf}`);
    expect(tree.steps.map((s) => [s.step, s.tool])).toEqual([
      [1, 'echo'],
      [2, 'echo'],
      [3, 'add'],
    ]);
    const records = await allAudit(suite.gw.url, `workflowId=${wf}`);
    expect(records.map((r) => r.args?.text ?? null).reverse()).toEqual([`root-${run}`, `child-${run}`, null]);
    // The budget (3 tool calls) belongs to the workflow, not to each session.
    const over = await call(child, 'fx__echo', { text: `child2-${run}` });
    expect(!over.ok && over.data.reason).toBe('budget_exceeded');
    expect(!over.ok && over.data.workflowId).toBe(wf);
  });
  it('calls through the single-server view /servers/fx/mcp are audited and budgeted the same way', async () => {
    const single = await connectClient(`${suite.gw.url}/servers/fx/mcp`, { name: 'single' });
    for (let i = 1; i <= 3; i++) expect((await call(single, 'echo', { text: `single${i}-${run}` })).ok).toBe(true);
    const over = await call(single, 'echo', { text: `single4-${run}` });
    expect(!over.ok && [over.code, over.data.reason]).toEqual([-32030, 'budget_exceeded']);
    expect(upstreamCallsWithText(suite.home.statsFile, `single4-${run}`)).toHaveLength(0);
    const wf = !over.ok ? (over.data.workflowId as string) : '';
    const records = await allAudit(suite.gw.url, `workflowId=${wf}`);
    expect(records.map((r) => [r.step, r.server, r.tool, r.outcome]).reverse()).toEqual([
      [1, 'fx', 'echo', 'ok'],
      [2, 'fx', 'echo', 'ok'],
      [3, 'fx', 'echo', 'ok'],
      [4, 'fx', 'echo', 'refused'],
    ]);
  });
});

describe('/admin/api/workflows filters and paging', () => {
  it('filters by agent and state', async () => {
    // Two more workflows: one left active, one ended.
    const open = await connectClient(suite.gw.mcpUrl, { name: 'open' });
    expect((await call(open, 'fx__echo', { text: `open-${run}` })).ok).toBe(true);
    const ended = await connectClient(suite.gw.mcpUrl, { name: 'ended' });
    expect((await call(ended, 'fx__echo', { text: `ended-${run}` })).ok).toBe(true);
    await terminate(ended);

    const done = await admin<WorkflowList>(suite.gw.url, '/workflows?state=done');
    expect(done.status).toBe(200);
    expect(done.body.workflows.length).toBeGreaterThanOrEqual(2);
    expect(done.body.workflows.every((w) => w.state === 'done')).toBe(true);
    expect(done.body.workflows.some((w) => w.id === wfA)).toBe(true);

    const active = await admin<WorkflowList>(suite.gw.url, '/workflows?state=active&agent=local');
    expect(active.body.workflows.length).toBeGreaterThanOrEqual(1);
    expect(active.body.workflows.every((w) => w.state === 'active' && w.agent === 'local')).toBe(true);
    expect(active.body.workflows.some((w) => w.id === wfA)).toBe(false);

    expect((await admin<WorkflowList>(suite.gw.url, '/workflows?agent=nobody-at-all')).body.workflows).toEqual([]);
    expect((await admin(suite.gw.url, '/workflows?state=sleeping')).status).toBe(400);
    expect((await admin(suite.gw.url, '/workflows/no-such-workflow')).status).toBe(404);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await admin<WorkflowList>(suite.gw.url, `/workflows?since=${encodeURIComponent(future)}`)).body.workflows).toEqual([]);
  });

  it('pages with limit and cursor, newest first, without duplicates or gaps', async () => {
    const everything = await admin<WorkflowList>(suite.gw.url, '/workflows?limit=1000');
    expect(everything.body.nextCursor).toBeNull();
    const ids = everything.body.workflows.map((w) => w.id);
    expect(ids.length).toBeGreaterThanOrEqual(4);

    const { pages, all } = await allWorkflows('', 2);
    expect(pages.length).toBe(Math.ceil(ids.length / 2));
    expect(pages.slice(0, -1).every((p) => p.length === 2)).toBe(true);
    expect(all.map((w) => w.id)).toEqual(ids);
    expect(new Set(all.map((w) => w.id)).size).toBe(all.length);
    const starts = all.map((w) => Date.parse(w.startedAt));
    expect([...starts].sort((x, y) => y - x)).toEqual(starts);

    const filtered = await allWorkflows('agent=local&state=done', 1);
    expect(filtered.all.every((w) => w.state === 'done')).toBe(true);
    expect(filtered.all.length).toBe((await admin<WorkflowList>(suite.gw.url, '/workflows?agent=local&state=done')).body.workflows.length);

    expect((await admin(suite.gw.url, '/workflows?cursor=garbage')).status).toBe(400);
    expect((await admin(suite.gw.url, '/workflows?limit=0')).status).toBe(400);
  });
});

describe('/admin/api/audit', () => {
  it('filters by tool, server, outcome and agent', async () => {
    const refusedEcho = await allAudit(suite.gw.url, 'tool=echo&server=fx&outcome=refused');
    expect(refusedEcho.length).toBeGreaterThanOrEqual(2);
    for (const r of refusedEcho) expect([r.tool, r.server, r.outcome]).toEqual(['echo', 'fx', 'refused']);
    const a4 = refusedEcho.find((r) => r.args?.text === `a4-${run}`);
    expect(a4).toMatchObject({ workflowId: wfA, step: 4, reason: 'budget_exceeded', agent: 'local' });

    const errors = await allAudit(suite.gw.url, 'outcome=error');
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.every((r) => r.outcome === 'error')).toBe(true);
    expect(errors.some((r) => r.tool === 'fail' && r.workflowId === wfA)).toBe(true);

    // The exposed name works as well as the upstream one.
    const adds = await allAudit(suite.gw.url, 'tool=fx__add');
    expect(adds.length).toBe(2);
    expect(adds.every((r) => r.tool === 'add' && r.outcome === 'ok')).toBe(true);

    expect(await allAudit(suite.gw.url, 'server=elsewhere')).toEqual([]);
    expect(await allAudit(suite.gw.url, 'agent=nobody-at-all')).toEqual([]);
    const all = await allAudit(suite.gw.url);
    expect((await allAudit(suite.gw.url, 'agent=local')).length).toBe(all.length);
    // Never a record for an unknown tool.
    expect(all.some((r) => r.tool === 'nope' || r.args?.text === `nope-${run}`)).toBe(false);
    expect((await admin(suite.gw.url, '/audit?outcome=maybe')).status).toBe(400);

    const future = Date.now() + 3_600_000;
    expect(await allAudit(suite.gw.url, `since=${future}`)).toEqual([]);
    expect((await allAudit(suite.gw.url, `until=${future}`)).length).toBe(all.length);
  });

  it('pages newest first with limit and cursor', async () => {
    const all = await allAudit(suite.gw.url);
    expect(all.length).toBeGreaterThanOrEqual(8);
    const seen: AuditRecordView[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/audit?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { status, body } = await admin<{ records: AuditRecordView[]; nextCursor: string | null }>(suite.gw.url, q);
      expect(status).toBe(200);
      expect(body.records.length).toBeLessThanOrEqual(3);
      seen.push(...body.records);
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen.map((r) => r.id)).toEqual(all.map((r) => r.id));
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.id).toBeLessThan(seen[i - 1]!.id);

    // Filters and paging together.
    const echoPage = await admin<{ records: AuditRecordView[]; nextCursor: string | null }>(suite.gw.url, '/audit?tool=echo&limit=2');
    expect(echoPage.body.records).toHaveLength(2);
    expect(echoPage.body.nextCursor).toBeTruthy();
    const next = await admin<{ records: AuditRecordView[] }>(suite.gw.url, `/audit?tool=echo&limit=2&cursor=${encodeURIComponent(echoPage.body.nextCursor!)}`);
    expect(next.body.records.every((r) => r.tool === 'echo' && r.id < echoPage.body.records[1]!.id)).toBe(true);
  });

  it('exports the trail as JSON lines, oldest first', async () => {
    const res = await fetch(`${suite.gw.url}/admin/api/audit/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('ndjson');
    const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecordView);
    const all = await allAudit(suite.gw.url);
    expect(lines.map((r) => r.id)).toEqual(all.map((r) => r.id).reverse());
  });
});

describe('telemetry', () => {
  it('/metrics counts calls by server, tool and outcome', async () => {
    const text = await metricsText(suite.gw.url);
    expect(text).toContain('# TYPE switchyard_calls_total counter');
    const all = await allAudit(suite.gw.url);
    const okEcho = all.filter((r) => r.tool === 'echo' && r.outcome === 'ok').length;
    expect(metricValue(text, 'switchyard_calls_total', { server: 'fx', tool: 'echo', outcome: 'ok' })).toBe(okEcho);
    expect(metricValue(text, 'switchyard_calls_total', { server: 'fx', tool: 'echo', outcome: 'refused' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, 'switchyard_calls_total', { server: 'fx', tool: 'fail', outcome: 'error' })).toBe(1);
    expect(metricValue(text, 'switchyard_refusals_total', { reason: 'budget_exceeded' })).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^switchyard_call_duration_seconds_bucket\{.*server="fx"/m);
  });

  it('logs one line per step with the workflow and step ids', async () => {
    const line = await waitFor(
      () =>
        suite.gw.logs
          .map((l) => {
            try {
              return JSON.parse(l) as Record<string, unknown>;
            } catch {
              return undefined;
            }
          })
          .find((r) => r?.msg === 'step' && r.workflowId === wfA && r.step === 4),
      { what: 'the step log line' },
    );
    expect(line).toMatchObject({ outcome: 'refused', reason: 'budget_exceeded', tool: 'echo', server: 'fx', agent: 'local' });
  });

  it('/admin/api/openapi.json is a valid OpenAPI document with the admin paths', async () => {
    const res = await fetch(`${suite.gw.url}/admin/api/openapi.json`);
    expect(res.status).toBe(200);
    const doc = JSON.parse(await res.text()) as { openapi: string; info: unknown; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info).toBeTruthy();
    for (const p of ['/workflows', '/workflows/{id}', '/workflows/{id}/pause', '/workflows/{id}/resume', '/workflows/{id}/kill', '/audit', '/audit/export']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });
});

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAudit, type AuditRuntime } from '../../src/audit/index.js';
import { addAdminApiPaths } from '../../src/audit/openapi.js';
import { createAuditAdminRouter } from '../../src/downstream/admin-audit.js';
import { caller, ok, refused, removeTempDirs, step, tempDataDir } from './helpers.js';
import { settled } from '../helpers/sync.js';

let audit: AuditRuntime;
let server: Server;
let base: string;
let wfId: string;

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, body: await res.json() };
}

async function post(path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  audit = openAudit({
    dataDir: tempDataDir(),
    audit: { enabled: true, durability: 'batched', flushMs: 100, redact: ['password'], modelBodies: 'none' as const },
  });
  const { workflows, store } = audit;
  // A two-level workflow: the root agent calls, delegates, and the sub-agent's calls join the same tree.
  wfId = workflows.begin({ caller: caller('root'), kind: 'mcp' });
  const root = caller('root');
  const sub = caller('sub', { chain: ['root', 'sub'], via: 'delegated' });
  const t0 = Date.parse('2026-04-01T10:00:00Z');
  const rec = (parentStep: number | undefined, who: typeof root, target: string, outcome: ReturnType<typeof ok>, args?: Record<string, unknown>): void => {
    const stepNo = settled(workflows.nextStep(wfId));
    store.record(step({ workflowId: wfId, stepNo, parentStep, caller: who, target, startedAt: t0 + stepNo * 1000, args }), outcome);
  };
  rec(undefined, root, 'search', ok(12), { q: 'x', password: 'pw-SECRET' });
  rec(undefined, root, 'delegate', ok(300));
  rec(2, sub, 'search', ok(4));
  rec(2, sub, 'drop_table', refused('policy_denied'));
  rec(2, sub, 'search', refused('loop_detected'));
  for (let i = 0; i < 3; i++) workflows.nextStep(workflows.begin({ caller: caller('other'), kind: 'a2a' }));
  workflows.begin({ caller: caller('other'), kind: 'mcp' }); // a session that never made a step is not listed

  const app = express();
  app.use('/admin/api', createAuditAdminRouter({ store, workflows }));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/api`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  audit.close();
  removeTempDirs();
});

describe('admin audit API', () => {
  it('reads the workflow tree back in order with outcomes and reasons', async () => {
    const { status, body } = await get(`/workflows/${wfId}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: wfId, agent: 'root', state: 'active', stepCount: 5 });
    expect(body.steps.map((s: any) => [s.step, s.parentStep, s.agent, s.tool, s.outcome, s.reason])).toEqual([
      [1, null, 'root', 'search', 'ok', null],
      [2, null, 'root', 'delegate', 'ok', null],
      [3, 2, 'sub', 'search', 'ok', null],
      [4, 2, 'sub', 'drop_table', 'refused', 'policy_denied'],
      [5, 2, 'sub', 'search', 'refused', 'loop_detected'],
    ]);
    expect(body.steps[1]).toMatchObject({ durationMs: 300, startedAt: '2026-04-01T10:00:02.000Z', server: 'github' });
    expect(body.tree.map((s: any) => s.step)).toEqual([1, 2]);
    expect(body.tree[1].children.map((s: any) => s.step)).toEqual([3, 4, 5]);
  });

  it('404s an unknown workflow with a JSON error', async () => {
    expect(await get('/workflows/does-not-exist')).toMatchObject({ status: 404, body: { error: 'not_found', message: expect.any(String) } });
  });

  it('lists workflows with filters and paging', async () => {
    const all = await get('/workflows');
    expect(all.body.workflows).toHaveLength(4);
    const other = await get('/workflows?agent=other&limit=2');
    expect(other.body.workflows).toHaveLength(2);
    const rest = await get(`/workflows?agent=other&limit=2&cursor=${other.body.nextCursor}`);
    expect(rest.body).toMatchObject({ workflows: [{ agent: 'other' }], nextCursor: null });
    expect((await get(`/workflows?agent=root`)).body.workflows[0]).toMatchObject({ id: wfId, user: 'alice@example.com', state: 'active', steps: 5 });
    expect((await get('/workflows?state=bogus')).status).toBe(400);
    expect((await get('/workflows?since=yesterday')).body).toMatchObject({ error: 'bad_request', message: expect.stringMatching(/since/) });
  });

  it('queries the audit trail newest first with filters, paging and redacted args', async () => {
    const refusals = await get('/audit?outcome=refused');
    expect(refusals.body.records.map((r: any) => [r.step, r.reason])).toEqual([[5, 'loop_detected'], [4, 'policy_denied']]);
    const page = await get('/audit?agent=sub&limit=2');
    expect(page.body.records.map((r: any) => r.step)).toEqual([5, 4]);
    const next = await get(`/audit?agent=sub&limit=2&cursor=${encodeURIComponent(page.body.nextCursor)}`);
    expect(next.body).toMatchObject({ records: [{ step: 3 }], nextCursor: null });
    const windowed = await get(`/audit?since=2026-04-01T10:00:02Z&until=${Date.parse('2026-04-01T10:00:03Z')}`);
    expect(windowed.body.records.map((r: any) => r.step)).toEqual([3, 2]);
    const first = await get('/audit?tool=github__search&user=alice@example.com&server=github&limit=1&cursor=');
    expect(first.body.records[0]).toMatchObject({ step: 5 });
    const withArgs = await get(`/audit?workflowId=${wfId}&agent=root&tool=search`);
    expect(withArgs.body.records[0].args).toEqual({ q: 'x', password: '[REDACTED]' });
  });

  it('rejects bad audit query parameters with 400', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=5000', 'outcome=maybe', 'cursor=zzz', 'agent=a&agent=b', 'until=not-a-time']) {
      const res = await get(`/audit?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body).toMatchObject({ error: 'bad_request', message: expect.any(String) });
    }
  });

  it('streams the export as JSON lines, oldest first', async () => {
    const res = await fetch(`${base}/audit/export?agent=sub`);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((r) => r.step)).toEqual([3, 4, 5]);
    expect(lines[0]).toMatchObject({ workflowId: wfId, agent: 'sub', chain: ['root', 'sub'], hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await fetch(`${base}/audit/export?outcome=nope`)).status).toBe(400);
  });

  it('pauses, resumes and kills, refusing illegal transitions with 409', async () => {
    const id = audit.workflows.begin({ caller: caller('ops'), kind: 'mcp' });
    const heard: string[] = [];
    audit.workflows.onStateChange((wf, state) => wf === id && heard.push(state));
    expect(await post(`/workflows/${id}/pause`, { why: 'investigating' })).toMatchObject({ status: 200, body: { id, state: 'paused', why: 'investigating' } });
    expect(await post(`/workflows/${id}/resume`)).toMatchObject({ status: 200, body: { state: 'active' } });
    expect(await post(`/workflows/${id}/kill`)).toMatchObject({ status: 200, body: { state: 'killed', endedAt: expect.any(String) } });
    expect(await post(`/workflows/${id}/resume`)).toMatchObject({ status: 409, body: { error: 'illegal_transition' } });
    expect(await post('/workflows/unknown-wf/pause')).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect(heard).toEqual(['paused', 'active', 'killed']);
    expect((await fetch(`${base}/workflows/${id}/explode`, { method: 'POST' })).status).toBe(404);
  });

  it('verifies the chain over HTTP', async () => {
    expect(await get('/audit/verify')).toMatchObject({ status: 200, body: { ok: true, records: 5 } });
  });

  it('serves an OpenAPI 3.1 document with these routes and room for others', async () => {
    addAdminApiPaths({ '/agents': { get: { summary: 'List agents.', responses: { 200: { description: 'ok' } } } } });
    const { status, body } = await get('/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
    for (const path of ['/workflows', '/workflows/{id}', '/workflows/{id}/pause', '/workflows/{id}/resume', '/workflows/{id}/kill', '/audit', '/audit/export', '/agents']) {
      expect(body.paths, path).toHaveProperty([path]);
    }
    expect(body.servers).toEqual([{ url: '/admin/api' }]);
  });

  it('streams a large export completely (chunked, with backpressure)', async () => {
    const id = audit.workflows.begin({ caller: caller('bulk'), kind: 'mcp' });
    const blob = 'x'.repeat(200);
    for (let i = 1; i <= 3000; i++) audit.store.record(step({ workflowId: id, stepNo: i, caller: caller('bulk'), args: { blob } }), ok());
    const res = await fetch(`${base}/audit/export?agent=bulk`);
    const lines = (await res.text()).trim().split('\n');
    expect(lines).toHaveLength(3000);
    expect(JSON.parse(lines[2999] as string)).toMatchObject({ step: 3000 });
  });
});

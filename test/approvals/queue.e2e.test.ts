/**
 * The approval queue through the API, against a real gateway: a client without elicitation (or a rule that says
 * `approval: console`) waits with progress, the call appears in GET /admin/api/approvals, and an admin decides.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { callWithProgress, connectClient, fixtureManifest, startGateway, stopAll, textOf, waitFor, type RunningGateway } from '../helpers/gateway.js';

const KEY = `key-${randomUUID()}`;
const ADMIN = `admin-${randomUUID()}`;
const admin = { authorization: `Bearer ${ADMIN}` };

interface Approval {
  id: string;
  agent: string;
  workflowId: string;
  tool: string;
  args: Record<string, unknown>;
  argsDigest: string;
  state: string;
  decidedBy?: string;
  reason?: string;
}

/** Webhook receivers: one that never answers, one that fails. Both must leave the call path alone. */
const hooked: string[] = [];
const hanging = http.createServer((req) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c));
  req.on('end', () => hooked.push(body)); // never answers
});
const failing = http.createServer((_req, res) => res.writeHead(500).end('broken'));

let gw: RunningGateway;
let short: RunningGateway;

function agents(): Record<string, Record<string, unknown>> {
  return {
    ops: {
      id: 'ops',
      owner: 'olga@example.com',
      credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] },
      tools: { allow: ['conf__*'], rules: [{ tool: 'conf__echo', approval: 'human' }, { tool: 'conf__add', approval: 'console' }] },
    },
  };
}

beforeAll(async () => {
  await Promise.all([new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r)), new Promise<void>((r) => failing.listen(0, '127.0.0.1', r))]);
  const port = (s: http.Server) => (s.address() as AddressInfo).port;
  [gw, short] = await Promise.all([
    startGateway({
      gatewayYaml: { admin: { tokens: [`sha256:${sha256Hex(ADMIN)}`] }, approval: { webhook: `http://127.0.0.1:${port(hanging)}/hook` } },
      servers: { conf: fixtureManifest() },
      agents: agents(),
    }),
    startGateway({
      gatewayYaml: { admin: { tokens: [`sha256:${sha256Hex(ADMIN)}`] }, approval: { timeoutSeconds: 1, webhook: `http://127.0.0.1:${port(failing)}/hook` } },
      servers: { conf: fixtureManifest() },
      agents: agents(),
    }),
  ]);
}, 60_000);
afterAll(async () => {
  await stopAll();
  hanging.closeAllConnections();
  hanging.close();
  failing.close();
});

async function pendingWhere(g: RunningGateway, match: (a: Approval) => boolean): Promise<Approval> {
  return waitFor(
    async () => {
      const res = await fetch(`${g.url}/admin/api/approvals`, { headers: admin });
      const { approvals } = (await res.json()) as { approvals: Approval[] };
      return approvals.find(match);
    },
    { what: 'a pending approval' },
  );
}

function decide(g: RunningGateway, id: string, decision: 'approve' | 'deny', body: Record<string, unknown> = {}, headers: Record<string, string> = admin): Promise<Response> {
  return fetch(`${g.url}/admin/api/approvals/${id}/${decision}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function client(g: RunningGateway, withElicitation = false): Promise<Client> {
  return connectClient(g.mcpUrl, {
    headers: { authorization: `Bearer ${KEY}` },
    ...(withElicitation ? { handlers: { elicitation: () => ({ action: 'accept', content: { approve: true } }) } } : {}),
  });
}

function refusalOf(p: Promise<unknown>): Promise<{ code?: number; message: string; data?: Record<string, unknown> } | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: number; message: string; data?: Record<string, unknown> }) => e,
  );
}

describe('approval queue', () => {
  it('holds the call of a client without elicitation, with progress, until an admin approves; the decision is a step', async () => {
    const c = await client(gw);
    const text = `ship-${randomUUID()}`;
    const call = callWithProgress(c, 'conf__echo', { text });
    const held = await pendingWhere(gw, (a) => a.args.text === text);
    expect(held).toMatchObject({ agent: 'ops', tool: 'conf__echo', state: 'pending', args: { text } });
    expect(held.argsDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const ok = await decide(gw, held.id, 'approve', { reason: 'looks fine', argsDigest: held.argsDigest });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ state: 'approved', reason: 'looks fine', decidedBy: expect.stringMatching(/^admin:[0-9a-f]{12}$/) });
    const { result, progress } = await call;
    expect(textOf(result)).toBe(text);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]!.message).toContain(held.id);

    const trail = await waitFor(async () => {
      const res = await fetch(`${gw.url}/admin/api/audit?workflowId=${held.workflowId}`, { headers: admin });
      const { records } = (await res.json()) as { records: Array<{ kind: string; outcome: string; tool: string; args: Record<string, unknown> }> };
      return records.some((r) => r.kind === 'tools/call') ? records : undefined;
    });
    const decision = trail.find((r) => r.kind === 'approval');
    expect(decision).toMatchObject({ outcome: 'ok', args: { decision: 'approved', approvalId: held.id, reason: 'looks fine', via: 'queue', decidedBy: expect.stringMatching(/^admin:/) } });
    // The webhook was told of the pending call, and never answering held nothing up.
    expect(hooked.some((b) => b.includes(held.id))).toBe(true);
  });

  it('binds a decision to the arguments: approving one call leaves a call with other arguments waiting', async () => {
    const c = await client(gw);
    const a = `a-${randomUUID()}`;
    const b = `b-${randomUUID()}`;
    const callA = c.callTool({ name: 'conf__echo', arguments: { text: a } });
    const callB = refusalOf(c.callTool({ name: 'conf__echo', arguments: { text: b } }));
    const heldA = await pendingWhere(gw, (x) => x.args.text === a);
    const heldB = await pendingWhere(gw, (x) => x.args.text === b);
    // A decision made on A's arguments does not pass for B.
    const wrong = await decide(gw, heldB.id, 'approve', { argsDigest: heldA.argsDigest });
    expect(wrong.status).toBe(409);
    expect(await wrong.json()).toMatchObject({ error: 'digest_mismatch' });
    expect((await decide(gw, heldA.id, 'approve', { argsDigest: heldA.argsDigest })).status).toBe(200);
    expect(textOf(await callA)).toBe(a);
    const stillB = (await (await fetch(`${gw.url}/admin/api/approvals/${heldB.id}`, { headers: admin })).json()) as Approval;
    expect(stillB.state).toBe('pending');
    expect((await decide(gw, heldB.id, 'deny', { reason: 'not this one' })).status).toBe(200);
    expect(await callB).toMatchObject({ code: -32030, data: { reason: 'approval_denied' } });
  });

  it('uses an approval once: a second decision is refused, and the same call again waits anew', async () => {
    const c = await client(gw);
    const text = `once-${randomUUID()}`;
    const first = c.callTool({ name: 'conf__echo', arguments: { text } });
    const held = await pendingWhere(gw, (x) => x.args.text === text);
    expect((await decide(gw, held.id, 'approve')).status).toBe(200);
    await first;
    const again = await decide(gw, held.id, 'deny');
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: 'already_decided' });
    const second = refusalOf(c.callTool({ name: 'conf__echo', arguments: { text } }));
    const heldAgain = await pendingWhere(gw, (x) => x.args.text === text && x.id !== held.id);
    expect(heldAgain.state).toBe('pending');
    expect((await decide(gw, heldAgain.id, 'deny', { reason: 'once was enough' })).status).toBe(200);
    expect((await second)?.message).toMatch(/once was enough/);
  });

  it('sends approval: console calls to the queue even when the client could answer itself', async () => {
    let prompted = 0;
    const c = await connectClient(gw.mcpUrl, {
      headers: { authorization: `Bearer ${KEY}` },
      handlers: { elicitation: () => (prompted++, { action: 'accept', content: { approve: true } }) },
    });
    const a = Math.floor(Math.random() * 1e6);
    const call = refusalOf(c.callTool({ name: 'conf__add', arguments: { a, b: 1 } }));
    const held = await pendingWhere(gw, (x) => x.tool === 'conf__add' && x.args.a === a);
    expect((await decide(gw, held.id, 'deny', { reason: 'no self-approval' })).status).toBe(200);
    expect(await call).toMatchObject({ code: -32030, data: { reason: 'approval_denied' } });
    expect(prompted).toBe(0);
  });

  it('refuses approval_denied when the client cancels while waiting, and marks the approval cancelled', async () => {
    const c = await client(gw);
    const text = `cancel-${randomUUID()}`;
    const controller = new AbortController();
    const call = refusalOf(c.callTool({ name: 'conf__echo', arguments: { text } }, undefined, { signal: controller.signal }));
    const held = await pendingWhere(gw, (x) => x.args.text === text);
    controller.abort('changed my mind');
    await call;
    const settled = await waitFor(async () => {
      const r = (await (await fetch(`${gw.url}/admin/api/approvals/${held.id}`, { headers: admin })).json()) as Approval;
      return r.state !== 'pending' ? r : undefined;
    });
    expect(settled).toMatchObject({ state: 'cancelled', decidedBy: 'client' });
  });

  it('refuses approval_denied when nobody decides in time, with a failing webhook never blocking the call', async () => {
    const c = await client(short);
    const text = `late-${randomUUID()}`;
    const started = Date.now();
    const err = await refusalOf(c.callTool({ name: 'conf__echo', arguments: { text } }));
    expect(err).toMatchObject({ code: -32030, data: { reason: 'approval_denied' } });
    expect(err!.message).toMatch(/in time/);
    expect(Date.now() - started).toBeLessThan(15_000);
    const decided = (await (await fetch(`${short.url}/admin/api/approvals?state=decided`, { headers: admin })).json()) as { approvals: Approval[] };
    expect(decided.approvals.find((x) => x.args.text === text)).toMatchObject({ state: 'expired', decidedBy: 'gateway' });
    expect(short.logs.some((l) => l.includes('approval webhook answered 500'))).toBe(true);
  });

  it('counts a denied call once among the overview refusals (its decision step is not a second refusal)', async () => {
    const audit = (await (await fetch(`${gw.url}/admin/api/audit?reason=approval_denied&limit=1000`, { headers: admin })).json()) as { records: Array<{ kind: string }> };
    const calls = audit.records.filter((r) => r.kind === 'tools/call').length;
    expect(calls).toBeGreaterThan(0);
    expect(audit.records.some((r) => r.kind === 'approval')).toBe(true);
    const overview = (await (await fetch(`${gw.url}/admin/api/overview`, { headers: admin })).json()) as { refusalsLastHour: Array<{ reason: string; count: number }> };
    expect(overview.refusalsLastHour.find((r) => r.reason === 'approval_denied')?.count).toBe(calls);
  });

  it('answers bad input with a clear 400 or 404 and changes nothing', async () => {
    expect((await decide(gw, 'no-such-id', 'approve')).status).toBe(404);
    const badReason = await decide(gw, 'no-such-id', 'approve', { reason: 42 });
    expect(badReason.status).toBe(400);
    expect(((await badReason.json()) as { message: string }).message).toMatch(/reason/);
    const badState = await fetch(`${gw.url}/admin/api/approvals?state=maybe`, { headers: admin });
    expect(badState.status).toBe(400);
    const notJson = await fetch(`${gw.url}/admin/api/approvals/x/approve`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
    expect((await fetch(`${gw.url}/admin/api/approvals`)).status).toBe(401);
  });
});

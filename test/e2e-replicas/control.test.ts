// Three replicas sharing one Redis and one PostgreSQL behind a round-robin balancer (issue 16): a shared limit of 10
// lets exactly 10 of 30 parallel calls through; a delegated token minted on one replica is accepted on another and
// revoked from a third within 1 s; token exchanges on every replica share one parent's maxChildren; a pause on one
// replica refuses the next call on another within 1 s; an approval decided on one replica releases the call waiting
// on another.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, sign, writeJwksFile, ISSUER, AUDIENCE, type TestKey } from '../identity/helpers.js';
import { readStats, stopEverything } from '../helpers/audit-harness.js';
import { waitFor } from '../helpers/gateway.js';
import { echo, sha256, startReplicas, statelessCall, type ReplicaSet } from '../helpers/replicas.js';
import { sharedStoresUnavailable, stopTestPostgres } from '../helpers/shared-stores.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`e2e-replicas skipped: ${skip}`);

const LIMITED_KEY = 'limited-key-replicas-0001';
const WORKER_KEY = 'worker-key-replicas-0002';
const CAREFUL_KEY = 'careful-key-replicas-0003';
const ADMIN = 'admin-token-replicas-0004';
const adminHeaders = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

async function adminCall<T = Record<string, unknown>>(baseUrl: string, path: string, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}/admin/api${path}`, { method, headers: adminHeaders, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

/** Milliseconds until `check` holds, polled every 20 ms; fails after `withinMs` × 3 so a slow replica shows its figure. */
async function msUntil(check: () => Promise<boolean>, withinMs: number): Promise<number> {
  const t0 = Date.now();
  await waitFor(async () => ((await check()) ? true : undefined), { timeoutMs: withinMs * 3, intervalMs: 20, what: 'the change on another replica' });
  return Date.now() - t0;
}

describe.skipIf(skip)('control across replicas', () => {
  let set: ReplicaSet;
  let issuerKey: TestKey;

  beforeAll(async () => {
    issuerKey = await makeKey('issuer-replicas', 'ES256');
    const jwksFile = await writeJwksFile(issuerKey);
    set = await startReplicas({
      agents: {
        limited: { id: 'limited', credentials: { apiKeys: [sha256(LIMITED_KEY)] }, tools: { allow: ['fx__*'] }, limits: { perDay: { toolCalls: 10 } } },
        worker: { id: 'worker', credentials: { apiKeys: [sha256(WORKER_KEY)] }, tools: { allow: ['fx__*'] }, canSetWorkflow: true },
        careful: { id: 'careful', credentials: { apiKeys: [sha256(CAREFUL_KEY)] }, tools: { allow: ['fx__*'], rules: [{ tool: 'fx__add', approval: 'console' }] } },
        root: { id: 'root', owner: 'root@example.com', credentials: { jwt: { sub: 'svc-root' } }, tools: { allow: ['fx__*'] }, delegation: { agents: ['child'], maxDepth: 1, maxChildren: 4 } },
        child: { id: 'child', owner: 'child@example.com', credentials: { jwt: { sub: 'svc-child' } }, tools: { allow: ['fx__*'] } },
      },
      gatewayYaml: { auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] }, admin: { tokens: [sha256(ADMIN)] } },
    });
  }, 180_000);

  afterAll(async () => {
    await set?.close();
    await stopEverything();
    await stopTestPostgres();
  });

  it('30 parallel calls against a shared limit of 10: exactly 10 answered, spread over every replica', async () => {
    const marker = `lim-${randomUUID().slice(0, 8)}`;
    const before = [...set.balancer.counts];
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => echo(set.mcpUrl, `${marker}-${i}`, { key: LIMITED_KEY })));
    const ok = answers.filter((a) => a.result && !a.result.isError);
    const refused = answers.filter((a) => a.error);
    expect(ok).toHaveLength(10);
    expect(refused).toHaveLength(20);
    for (const r of refused) expect(r.error).toMatchObject({ code: -32030, data: { reason: 'budget_exceeded', limit: 'perDay.toolCalls', max: 10 } });
    // The upstreams of all replicas together saw exactly the ten admitted calls.
    expect(readStats(set.home.statsFile).filter((l) => JSON.stringify(l).includes(marker))).toHaveLength(10);
    const spread = set.balancer.counts.map((c, i) => c - before[i]!);
    for (const n of spread) expect(n).toBeGreaterThanOrEqual(5);
  });

  it('a token minted on one replica is accepted on another and refused everywhere within 1 s of a revocation on a third', async () => {
    const [a, b, c] = set.replicas as [typeof set.replicas[0], typeof set.replicas[0], typeof set.replicas[0]];
    const rootToken = await sign({ sub: 'svc-root', jti: randomUUID() }, { key: issuerKey, nowSec: Math.floor(Date.now() / 1000), ttlSec: 3600 });
    const res = await fetch(`${a.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: rootToken, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', audience: 'child' }),
    });
    const minted = (await res.json()) as { access_token?: string };
    expect(res.status, JSON.stringify(minted)).toBe(200);
    const token = minted.access_token!;
    const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;
    const onB = await echo(`${b.url}/mcp`, 'delegated on b', { bearer: token });
    expect(onB.error, JSON.stringify(onB)).toBeUndefined();
    expect(onB.result?.isError).not.toBe(true);

    const revoked = await adminCall<{ revoked: string[] }>(c.url, `/tokens/${jti}/revoke`, 'POST');
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toEqual([jti]);
    const refusedOn = async (url: string) => (await echo(`${url}/mcp`, 'after revoke', { bearer: token })).status === 401;
    const msB = await msUntil(() => refusedOn(b.url), 1000);
    const msA = await msUntil(() => refusedOn(a.url), 1000);
    console.log(`revocation seen on replica b after ${msB} ms, on a after ${msA} ms more`);
    expect(msB).toBeLessThanOrEqual(1000);
    expect(msA).toBeLessThanOrEqual(1000);
  });

  it("12 exchanges spread over every replica against one parent's maxChildren of 4 mint exactly 4; a revocation frees a slot everywhere", async () => {
    const [a, b, c] = set.replicas as [typeof set.replicas[0], typeof set.replicas[0], typeof set.replicas[0]];
    const rootToken = await sign({ sub: 'svc-root', jti: randomUUID() }, { key: issuerKey, nowSec: Math.floor(Date.now() / 1000), ttlSec: 3600 });
    const ask = async (url: string) => {
      const res = await fetch(`${url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: rootToken, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', audience: 'child' }),
      });
      return { status: res.status, body: (await res.json()) as { access_token?: string; error?: string; error_description?: string } };
    };
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask([a, b, c][i % 3]!.url)));
    const minted = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status !== 200);
    expect(minted, JSON.stringify(answers.map((r) => r.status))).toHaveLength(4);
    expect(refused).toHaveLength(8);
    for (const r of refused) {
      expect(r).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
      expect(r.body.error_description).toMatch(/already has 4 live sub-agents \(at most 4\)/);
    }
    expect((await ask(b.url)).status).toBe(400);
    const jti = JSON.parse(Buffer.from(minted[0]!.body.access_token!.split('.')[1]!, 'base64url').toString()).jti as string;
    expect((await adminCall(c.url, `/tokens/${jti}/revoke`, 'POST')).status).toBe(200);
    // The revoking replica gave the slot back in Redis: the next exchange, on another replica, is minted.
    expect((await ask(a.url)).status).toBe(200);
    expect((await ask(b.url)).status).toBe(400);
  });

  it('a pause on one replica refuses the next call on another within 1 s, and a resume lets calls through again', async () => {
    const [a, b] = set.replicas as [typeof set.replicas[0], typeof set.replicas[0]];
    const wf = `wf-pause-${randomUUID().slice(0, 8)}`;
    const first = await echo(`${b.url}/mcp`, 'before pause', { key: WORKER_KEY, workflowId: wf });
    expect(first.error, JSON.stringify(first)).toBeUndefined();
    const paused = await adminCall(a.url, `/workflows/${wf}/pause`, 'POST', { why: 'replica test' });
    expect(paused.status).toBe(200);
    let refusal: unknown;
    const ms = await msUntil(async () => {
      const r = await echo(`${b.url}/mcp`, 'while paused', { key: WORKER_KEY, workflowId: wf });
      refusal = r.error;
      return r.error?.data?.reason === 'workflow_paused';
    }, 1000);
    console.log(`pause on replica a refused a call on replica b after ${ms} ms`);
    expect(ms).toBeLessThanOrEqual(1000);
    expect(refusal).toMatchObject({ code: -32030, data: { reason: 'workflow_paused', workflowId: wf } });
    expect((await adminCall(b.url, `/workflows/${wf}/resume`, 'POST')).status).toBe(200);
    await msUntil(async () => (await echo(`${a.url}/mcp`, 'after resume', { key: WORKER_KEY, workflowId: wf })).error === undefined, 1000);
  });

  it('an approval decided on one replica releases the call waiting on another', async () => {
    const [a, b] = set.replicas as [typeof set.replicas[0], typeof set.replicas[0]];
    const marker = Math.floor(Math.random() * 1e6);
    // A failed test closes the replicas under this call: answer that as an error, not an unhandled rejection.
    const waiting = statelessCall(`${a.url}/mcp`, 'tools/call', { name: 'fx__add', arguments: { a: marker, b: 1 } }, { key: CAREFUL_KEY }).catch((err: Error) => ({ status: 0, result: undefined, error: { code: NaN, message: err.message } }));
    const held = await waitFor(
      async () => (await adminCall<{ approvals: Array<{ id: string; args: { a?: number } }> }>(b.url, '/approvals?state=pending')).body.approvals.find((p) => p.args.a === marker),
      { what: 'the pending approval, seen from replica b', timeoutMs: 10_000 },
    );
    const t0 = Date.now();
    const decided = await adminCall(b.url, `/approvals/${held.id}/approve`, 'POST', { reason: 'fine' });
    expect(decided.status).toBe(200);
    const answer = await waiting;
    console.log(`approval decided on replica b released the call on replica a after ${Date.now() - t0} ms`);
    expect(answer.error, JSON.stringify(answer)).toBeUndefined();
    expect(JSON.stringify(answer.result)).toContain(String(marker + 1));
  });
});

/** Token exchange in process: API-key and local-mode parents, workflows, lifetimes and the audited refusals. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, closeDatabase } from '../../src/audit/index.js';
import { MemoryWorkflows } from '../../src/gateway/memory-workflows.js';
import type { Step, StepOutcome } from '../../src/gateway/types.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { Authenticator } from '../../src/identity/authenticate.js';
import { exchange, isExchangeFailure, type DelegationDeps, type ExchangeRequest } from '../../src/identity/delegation.js';
import { openDelegation, type DelegationRuntime } from '../../src/identity/delegation-runtime.js';
import { JwtVerifier } from '../../src/identity/jwt.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { agent, agentMap } from '../identity/helpers.js';

const ISSUER = 'http://127.0.0.1:9';
const KEY = 'parent-api-key';
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup(agents: ReturnType<typeof agent>[], maxTokenSeconds = 600) {
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-deleg-'));
  const db = openDatabase({ dataDir });
  cleanups.push(() => {
    closeDatabase(db);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const registry = new AgentRegistry(agentMap(...agents));
  const verifier = new JwtVerifier([]);
  const authenticator = new Authenticator({ verifier, registry });
  const runtime: DelegationRuntime = await openDelegation({ config: { dataDir, delegation: { maxTokenSeconds } }, db, agents: registry, localMode: () => authenticator.localMode });
  runtime.trust(verifier, ISSUER);
  authenticator.setRevocationCheck(runtime.isRevoked);
  const workflows = new MemoryWorkflows();
  const steps: Array<[Step, StepOutcome]> = [];
  const deps: DelegationDeps = {
    authenticate: (i) => authenticator.authenticate(i),
    agents: registry,
    sign: (c) => runtime.keys.sign(c),
    store: runtime.store,
    limits: runtime.limits,
    workflows,
    issuer: () => ISSUER,
    maxTokenSeconds: () => maxTokenSeconds,
    sinks: () => [{ record: (s, o) => void steps.push([s, o]) }],
    localMode: () => authenticator.localMode,
  };
  const ask = (r: Partial<ExchangeRequest>) =>
    exchange({ subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token', remoteAddress: '127.0.0.1', ...r }, deps);
  return { ask, steps, workflows, authenticator, runtime, db, dataDir };
}

const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('token exchange', () => {
  it('an API-key parent gets a new workflow, a token capped at maxTokenSeconds, and the exchange is a delegation step', async () => {
    const parent = agent('parent', { owner: 'alice@example.com', credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] }, delegation: { agents: ['worker-*'], maxDepth: 1, maxChildren: 1 } });
    const { ask, steps, workflows, authenticator } = await setup([parent, agent('worker-1')], 300);
    const r = await ask({ subjectToken: KEY, audience: 'worker-1' });
    if (isExchangeFailure(r)) throw new Error(r.error_description);
    expect(r.expires_in).toBe(300);
    const c = claims(r.access_token);
    expect(c).toMatchObject({ sub: 'worker-1', act: { sub: 'parent' }, usr: 'alice@example.com', depth: 1, pstep: 1 });
    expect(workflows.state(c.wf as string)).toBe('active');
    expect(steps.map(([s, o]) => [s.kind, s.target, o.outcome])).toEqual([['delegation', 'worker-1', 'ok']]);

    const child = await authenticator.authenticate({ authorization: `Bearer ${r.access_token}` });
    expect(child).toMatchObject({ ok: true, caller: { agentId: 'worker-1', via: 'delegated', chain: ['parent', 'worker-1'], workflowId: c.wf } });

    const second = await ask({ subjectToken: KEY, audience: 'worker-1' });
    // A new workflow per API-key exchange outside a session: the children limit is per workflow node then.
    expect(isExchangeFailure(second)).toBe(false);
  });

  it('a delegated token whose record is not here yet (minted on another replica) is loaded before its caller is made', async () => {
    const parent = agent('parent', { credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] }, delegation: { agents: ['worker-1'], maxDepth: 1, maxChildren: 2 } });
    const { ask, authenticator } = await setup([parent, agent('worker-1')]);
    const r = await ask({ subjectToken: KEY, audience: 'worker-1', budget: 3 });
    if (isExchangeFailure(r)) throw new Error(r.error_description);
    const jti = claims(r.access_token).jti as string;
    const local = new Set<string>();
    const loads: string[] = [];
    let release!: () => void;
    const arrived = new Promise<void>((res) => (release = res));
    authenticator.setTokenLoader((id) => {
      if (local.has(id)) return undefined;
      loads.push(id);
      return arrived.then(() => void local.add(id));
    });
    let settled = false;
    const first = authenticator.authenticate({ authorization: `Bearer ${r.access_token}` });
    void Promise.resolve(first).then(() => (settled = true));
    await new Promise((res) => setImmediate(res));
    expect(settled).toBe(false); // no caller until the record is here
    release();
    expect(await first).toMatchObject({ ok: true, caller: { agentId: 'worker-1', via: 'delegated', jti } });
    expect(await authenticator.authenticate({ authorization: `Bearer ${r.access_token}` })).toMatchObject({ ok: true });
    expect(loads).toEqual([jti]); // loaded once, then served from the local copy
  });

  it('answers malformed requests with invalid_request and unknown subject tokens with invalid_grant, without a step', async () => {
    const { ask, steps } = await setup([agent('p', { credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] } })]);
    expect(await ask({ audience: 'x' })).toMatchObject({ error: 'invalid_request', status: 400 });
    expect(await ask({ subjectToken: KEY, audience: 'x', subjectTokenType: 'urn:x' })).toMatchObject({ error: 'invalid_request' });
    expect(await ask({ subjectToken: KEY })).toMatchObject({ error: 'invalid_request' });
    expect(await ask({ subjectToken: KEY, audience: 'x', budget: '0' })).toMatchObject({ error: 'invalid_request' });
    expect(await ask({ subjectToken: 'wrong-key', audience: 'x' })).toMatchObject({ error: 'invalid_grant' });
    expect(steps).toHaveLength(0);
  });

  it('in local mode the loopback caller delegates to any agent, and its children are narrowed to their own policy', async () => {
    const worker = agent('worker', { tools: { allow: ['a__*'], deny: [], rules: [] } });
    const { ask, authenticator, runtime, steps } = await setup([worker]);
    expect(authenticator.localMode).toBe(true);
    const r = await ask({ subjectToken: 'anything', audience: 'worker' });
    if (isExchangeFailure(r)) throw new Error(r.error_description);
    const child = await authenticator.authenticate({ authorization: `Bearer ${r.access_token}`, remoteAddress: '127.0.0.1' });
    if (!child.ok) throw new Error(child.message);
    expect(child.caller.agentId).toBe('worker');
    const policy = runtime.policies.forCaller(child.caller);
    expect([policy.canSeeTool('a__x'), policy.canSeeTool('b__x')]).toEqual([true, false]);

    // Revoked: refused at authentication, and as a subject token.
    runtime.revoke(claims(r.access_token).jti as string);
    expect(await authenticator.authenticate({ authorization: `Bearer ${r.access_token}`, remoteAddress: '127.0.0.1' })).toMatchObject({ ok: false, status: 401, error: 'invalid_token' });
    expect(await ask({ subjectToken: r.access_token, audience: 'worker' })).toMatchObject({ error: 'invalid_grant' });
    expect(steps.filter(([, o]) => o.reason === 'delegation_denied')).toHaveLength(0);
  });
});

describe('after a restart', () => {
  it('live children still count against maxChildren', async () => {
    const parent = agent('parent', { credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] }, delegation: { agents: ['w'], maxDepth: 1, maxChildren: 1 } });
    const { runtime, db, dataDir } = await setup([parent, agent('w')]);
    runtime.store.record({ jti: 'j1', parentNode: 'parent@wf', workflowId: 'wf', agent: 'w', parentAgent: 'parent', depth: 1, issuedAt: Date.now(), expiresAt: Date.now() + 60_000 });
    runtime.store.record({ jti: 'j2', parentNode: 'parent@wf', workflowId: 'wf', agent: 'w', parentAgent: 'parent', depth: 1, issuedAt: Date.now(), expiresAt: Date.now() + 60_000 });
    runtime.store.revoke('j2');
    const reopened = await openDelegation({ config: { dataDir, delegation: { maxTokenSeconds: 600 } }, db, agents: new AgentRegistry(), localMode: () => false });
    expect(reopened.limits.liveChildren('parent@wf')).toBe(1);
    expect(reopened.isRevoked('j2')).toBe(true);
    expect(reopened.keys.current()?.kid).toBe(runtime.keys.current()?.kid);
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHttpAuthenticate } from '../../src/downstream/auth-http.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { actChain, Authenticator, type AuthOutcome } from '../../src/identity/authenticate.js';
import { isLoopbackHost } from '../../src/util/net.js';
import { JwtVerifier } from '../../src/identity/jwt.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { agent, agentMap, AUDIENCE, b64url, ISSUER, jwks, makeKey, sign, writeJwksFile, type TestKey } from './helpers.js';

const API_KEY = 'sk-test-pipeline-0123456789';
const GATEWAY = 'https://gw.test';
const PUBLIC_URL = 'http://127.0.0.1';

const pipeline = agent('data-pipeline', {
  owner: 'alice@example.com',
  credentials: { jwt: { sub: 'svc-data-pipeline' }, apiKeys: [`sha256:${sha256Hex(API_KEY)}`] },
});
const webApp = agent('web-app', { owner: 'ops@example.com', credentials: { jwt: { client_id: 'web-client' }, apiKeys: [] } });
const pinned = agent('pinned', { credentials: { jwt: { sub: 'svc-data-pipeline', iss: 'https://idp-b.test' }, apiKeys: [] } });
const child = agent('segment-worker', { owner: 'bob@example.com' });

async function settle(o: AuthOutcome | Promise<AuthOutcome>): Promise<AuthOutcome> {
  return o;
}

describe('Authenticator', () => {
  let key: TestKey;
  let minting: TestKey;
  let auth: Authenticator;
  const nowSec = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    key = await makeKey('k1');
    minting = await makeKey('gw1', 'ES256');
    const verifier = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: await writeJwksFile(key) }]);
    verifier.addLocalIssuer(GATEWAY, () => jwks(minting));
    auth = new Authenticator({ verifier, registry: new AgentRegistry(agentMap(pipeline, webApp, pinned, child)) });
  });

  it('finds the agent by the sub of a verified token; the user is its owner', async () => {
    const token = await sign({ sub: 'svc-data-pipeline', jti: 'j1' }, { key, nowSec: nowSec() });
    const r = await settle(auth.authenticate({ authorization: `Bearer ${token}`, remoteAddress: '10.0.0.5' }));
    expect(r).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline', user: 'alice@example.com', chain: ['data-pipeline'], via: 'jwt', jti: 'j1' } });
    expect(auth.localMode).toBe(false);
  });

  it('answers a repeated bearer synchronously from the verification cache', async () => {
    const token = await sign({ sub: 'svc-data-pipeline' }, { key, nowSec: nowSec() });
    const first = auth.authenticate({ authorization: `Bearer ${token}` });
    expect(first).toBeInstanceOf(Promise);
    await first;
    const again = auth.authenticate({ authorization: `Bearer ${token}` });
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline' } });
  });

  it('names the exact principal: subject, client and scope of a JWT, the key hash of an API key', async () => {
    const principal = async (claims: Record<string, unknown>) => {
      const r = await settle(auth.authenticate({ authorization: `Bearer ${await sign(claims, { key, nowSec: nowSec() })}` }));
      return r.ok ? r.caller.principal : r.message;
    };
    const alice = await principal({ sub: 'alice', client_id: 'web-client', jti: 'a1' });
    expect(await principal({ sub: 'alice', client_id: 'web-client', jti: 'a2' })).toBe(alice);
    expect(await principal({ sub: 'mallory', client_id: 'web-client' })).not.toBe(alice);
    expect(await principal({ sub: 'alice', client_id: 'web-client', scope: 'read' })).not.toBe(alice);
    const byKey = await settle(auth.authenticate({ apiKeyHeader: API_KEY }));
    expect(byKey).toMatchObject({ ok: true, caller: { principal: `sha256:${sha256Hex(API_KEY)}` } });
  });

  it('passes over an agent pinned to another issuer', async () => {
    const token = await sign({ sub: 'svc-data-pipeline' }, { key, nowSec: nowSec() });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline' } });
  });

  it('treats a client_id token with a human subject as acting for that human', async () => {
    const token = await sign({ sub: 'u-123', client_id: 'web-client', email: 'carol@example.com' }, { key, nowSec: nowSec() });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({
      ok: true,
      caller: { agentId: 'web-app', user: 'carol@example.com' },
    });
  });

  it('takes the user from the root of an act chain', async () => {
    const token = await sign({ sub: 'svc-data-pipeline', act: { sub: 'svc-proxy', act: { sub: 'dave@example.com' } } }, { key, nowSec: nowSec() });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({ ok: true, caller: { user: 'dave@example.com' } });
    expect(actChain({ act: { sub: 'b', act: { sub: 'a' } } })).toEqual(['a', 'b']);
  });

  it('refuses a valid token that no agent owns with 403 access_denied', async () => {
    const token = await sign({ sub: 'svc-stranger' }, { key, nowSec: nowSec() });
    const r = await settle(auth.authenticate({ authorization: `Bearer ${token}` }));
    expect(r).toMatchObject({ ok: false, status: 403, error: 'access_denied', reason: 'unauthenticated' });
    expect(!r.ok && r.message).toContain('sub="svc-stranger"');
  });

  it('refuses an invalid token with 401 invalid_token and the verifier reason', async () => {
    const token = await sign({ sub: 'svc-data-pipeline', exp: nowSec() - 120 }, { key, nowSec: nowSec() - 300 });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({
      ok: false,
      status: 401,
      error: 'invalid_token',
      tokenError: 'expired',
    });
  });

  it('accepts an API key as a Bearer or in X-API-Key and refuses an unknown one', async () => {
    for (const input of [{ authorization: `Bearer ${API_KEY}` }, { apiKeyHeader: API_KEY }]) {
      expect(await settle(auth.authenticate(input))).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline', via: 'apikey', user: 'alice@example.com' } });
    }
    expect(await settle(auth.authenticate({ apiKeyHeader: `${API_KEY}x` }))).toMatchObject({ ok: false, status: 401, error: 'invalid_token' });
    expect(await settle(auth.authenticate({ authorization: 'Bearer not-a-jwt' }))).toMatchObject({ ok: false, status: 401 });
  });

  it('refuses missing credentials, other schemes, two credentials and a token in the query string', async () => {
    expect(await settle(auth.authenticate({ remoteAddress: '127.0.0.1' }))).toMatchObject({ ok: false, status: 401, error: undefined });
    expect(await settle(auth.authenticate({ authorization: 'Basic dXNlcjpwYXNz' }))).toMatchObject({ ok: false, status: 401 });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${API_KEY}`, apiKeyHeader: API_KEY }))).toMatchObject({
      ok: false,
      status: 400,
      error: 'invalid_request',
    });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${API_KEY}`, queryHasToken: true }))).toMatchObject({
      ok: false,
      status: 400,
      error: 'invalid_request',
    });
  });

  it('reads a gateway-minted delegated token: child agent, chain, workflow, scope, depth and user', async () => {
    const token = await sign(
      { iss: GATEWAY, aud: GATEWAY, sub: 'segment-worker', act: { sub: 'data-pipeline' }, wf: 'wf-1', scope: 'bigquery__query  jira__*', jti: 'd1' },
      { key: minting, nowSec: nowSec() },
    );
    expect(await settle(auth.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({
      ok: true,
      caller: {
        agentId: 'segment-worker',
        chain: ['data-pipeline', 'segment-worker'],
        workflowId: 'wf-1',
        scope: ['bigquery__query', 'jira__*'],
        depth: 1,
        user: 'alice@example.com',
        via: 'delegated',
        jti: 'd1',
      },
    });
  });

  it('refuses a delegated token for an agent that left agents.d', async () => {
    const token = await sign({ iss: GATEWAY, aud: GATEWAY, sub: 'gone' }, { key: minting, nowSec: nowSec() });
    expect(await settle(auth.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({ ok: false, status: 403 });
  });

  it('derives a cached token\'s caller once per registry: the same frozen caller until a reload, revocation asked every time', async () => {
    const key2 = await makeKey('k2');
    const verifier = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: await writeJwksFile(key2) }]);
    const registry = new AgentRegistry(agentMap(pipeline));
    const a = new Authenticator({ verifier, registry });
    const revoked = new Set<string>();
    a.setRevocationCheck((jti) => revoked.has(jti));
    const token = await sign({ sub: 'svc-data-pipeline', jti: 'memo-1' }, { key: key2, nowSec: nowSec() });
    const first = await settle(a.authenticate({ authorization: `Bearer ${token}` }));
    const again = await settle(a.authenticate({ authorization: `Bearer ${token}` }));
    expect(first.ok && again.ok).toBe(true);
    if (!first.ok || !again.ok) return;
    expect(again.caller).toBe(first.caller);
    expect(Object.isFrozen(first.caller)).toBe(true);
    expect(() => (first.caller.chain as string[]).push('x')).toThrow();
    // A reload that moves the credential to another agent is seen by the next request of the same token.
    registry.update(agentMap(agent('renamed', { owner: 'zed@example.com', credentials: { jwt: { sub: 'svc-data-pipeline' }, apiKeys: [] } })));
    const reloaded = await settle(a.authenticate({ authorization: `Bearer ${token}` }));
    expect(reloaded).toMatchObject({ ok: true, caller: { agentId: 'renamed', user: 'zed@example.com' } });
    registry.update(agentMap(webApp));
    expect(await settle(a.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({ ok: false, status: 403 });
    registry.update(agentMap(pipeline));
    expect(await settle(a.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline' } });
    revoked.add('memo-1');
    expect(await settle(a.authenticate({ authorization: `Bearer ${token}` }))).toMatchObject({ ok: false, status: 401, tokenError: 'revoked' });
  });

  it('knows a repeated Authorization header without parsing it again, while expiry, revocation and a reload of the issuers still apply', async () => {
    const key3 = await makeKey('k3');
    let nowMs = Date.now();
    const jwksFile = await writeJwksFile(key3);
    const verifier = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile }], { now: () => nowMs });
    const a = new Authenticator({ verifier, registry: new AgentRegistry(agentMap(pipeline)) });
    const revoked = new Set<string>();
    a.setRevocationCheck((jti) => revoked.has(jti));
    const cached = vi.spyOn(verifier, 'cached');
    const token = await sign({ sub: 'svc-data-pipeline', jti: 'hdr-1' }, { key: key3, nowSec: Math.floor(nowMs / 1000), ttlSec: 60 });
    const header = `Bearer ${token}`;
    expect(await settle(a.authenticate({ authorization: header }))).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline' } });
    cached.mockClear();
    expect(a.authenticate({ authorization: header })).toMatchObject({ ok: true, caller: { agentId: 'data-pipeline' } });
    expect(cached).not.toHaveBeenCalled();
    revoked.add('hdr-1');
    expect(a.authenticate({ authorization: header })).toMatchObject({ ok: false, tokenError: 'revoked' });
    revoked.clear();
    // New issuers: the header is verified again, against them.
    verifier.setIssuers([{ issuer: 'https://other.test', audience: AUDIENCE, jwksFile }]);
    expect(await settle(a.authenticate({ authorization: header }))).toMatchObject({ ok: false, tokenError: 'wrong_issuer' });
    verifier.setIssuers([{ issuer: ISSUER, audience: AUDIENCE, jwksFile }]);
    expect(await settle(a.authenticate({ authorization: header }))).toMatchObject({ ok: true });
    // Past its expiry (and the verifier's tolerance) it is refused as expired, not answered from memory.
    nowMs += 120_000;
    expect(await settle(a.authenticate({ authorization: header }))).toMatchObject({ ok: false, tokenError: 'expired' });
    // The same header beside an API key is ambiguous, remembered or not.
    expect(await settle(a.authenticate({ authorization: header, apiKeyHeader: API_KEY }))).toMatchObject({ ok: false, status: 400 });
  });

  it('applies a registry reload to the next request', async () => {
    const verifier = new JwtVerifier([]);
    const registry = new AgentRegistry(agentMap(pipeline));
    const a = new Authenticator({ verifier, registry });
    expect(await settle(a.authenticate({ apiKeyHeader: API_KEY }))).toMatchObject({ ok: true });
    registry.update(agentMap(agent('data-pipeline'), agent('other', { credentials: { apiKeys: ['sha256:' + sha256Hex('k2')] } })));
    expect(await settle(a.authenticate({ apiKeyHeader: API_KEY }))).toMatchObject({ ok: false, status: 401 });
    expect(await settle(a.authenticate({ apiKeyHeader: 'k2' }))).toMatchObject({ ok: true, caller: { agentId: 'other' } });
  });
});

describe('local mode', () => {
  it('is on only without issuers and API keys, and admits loopback callers as `local`', async () => {
    const registry = new AgentRegistry(agentMap(agent('helper', { credentials: { jwt: { sub: 'x' }, apiKeys: [] } })));
    const a = new Authenticator({ verifier: new JwtVerifier([]), registry });
    expect(a.localMode).toBe(true);
    for (const addr of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      expect(await settle(a.authenticate({ remoteAddress: addr }))).toMatchObject({ ok: true, caller: { agentId: 'local', via: 'local', agent: undefined } });
    }
    expect(await settle(a.authenticate({ remoteAddress: '192.168.1.9' }))).toMatchObject({ ok: false, status: 403, error: 'access_denied' });
    expect(await settle(a.authenticate({ remoteAddress: '127.0.0.1', queryHasToken: true }))).toMatchObject({ ok: false, status: 400 });
  });

  it('hands agents.d/local.yaml to the local caller when present', async () => {
    const local = agent('local', { tools: { allow: ['fs__read_*'], deny: [], rules: [] } });
    const a = new Authenticator({ verifier: new JwtVerifier([]), registry: new AgentRegistry(agentMap(local)) });
    expect(await settle(a.authenticate({ remoteAddress: '127.0.0.1' }))).toMatchObject({ ok: true, caller: { agent: local } });
  });

  it('still narrows a loopback caller holding a delegated token, and refuses it when expired', async () => {
    const minting = await makeKey('gw1', 'ES256');
    const verifier = new JwtVerifier([]);
    verifier.addLocalIssuer(GATEWAY, () => jwks(minting));
    const a = new Authenticator({ verifier, registry: new AgentRegistry(agentMap(child)) });
    const nowSec = Math.floor(Date.now() / 1000);
    const good = await sign({ iss: GATEWAY, aud: GATEWAY, sub: 'segment-worker', act: { sub: 'local' } }, { key: minting, nowSec });
    const expired = await sign({ iss: GATEWAY, aud: GATEWAY, sub: 'segment-worker', exp: nowSec - 120 }, { key: minting, nowSec: nowSec - 300 });
    expect(await settle(a.authenticate({ authorization: `Bearer ${good}`, remoteAddress: '127.0.0.1' }))).toMatchObject({
      ok: true,
      caller: { agentId: 'segment-worker', via: 'delegated', chain: ['local', 'segment-worker'] },
    });
    expect(await settle(a.authenticate({ authorization: `Bearer ${expired}`, remoteAddress: '127.0.0.1' }))).toMatchObject({ ok: false, status: 401 });
  });

  it('recognises loopback listen hosts', () => {
    expect(isLoopbackHost('127.0.0.2')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
  });
});

describe('over HTTP: status and WWW-Authenticate for each refusal', () => {
  let server: Server;
  let base: string;
  let key: TestKey;
  let wrongKey: TestKey;
  const nowSec = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    key = await makeKey('k1');
    wrongKey = await makeKey('k1');
    const verifier = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: await writeJwksFile(key) }]);
    const authenticate = createHttpAuthenticate(new Authenticator({ verifier, registry: new AgentRegistry(agentMap(pipeline)) }), {
      publicUrl: PUBLIC_URL,
    });
    server = createServer(async (req, res) => {
      const r = await authenticate(req, '/mcp');
      if (r.ok) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ agent: r.caller.agentId }));
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers }).end(JSON.stringify(r.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const metadata = `resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp"`;
  const call = (headers: Record<string, string> = {}, path = '/mcp') => fetch(base + path, { method: 'POST', headers });

  it('missing token: 401 with the resource metadata and no error code', async () => {
    const res = await call();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer ${metadata}`);
    expect(await res.json()).toMatchObject({ error: { code: -32030, data: { reason: 'unauthenticated' } } });
  });

  const cases: Array<[string, () => Promise<string>]> = [
    ['expired', () => sign({ sub: 'svc-data-pipeline', exp: nowSec() - 120 }, { key, nowSec: nowSec() - 300 })],
    ['not yet valid', () => sign({ sub: 'svc-data-pipeline', nbf: nowSec() + 300 }, { key, nowSec: nowSec() })],
    ['wrong iss', () => sign({ sub: 'svc-data-pipeline', iss: 'https://evil.test' }, { key, nowSec: nowSec() })],
    ['wrong aud', () => sign({ sub: 'svc-data-pipeline', aud: 'https://elsewhere.test' }, { key, nowSec: nowSec() })],
    ['wrong key', () => sign({ sub: 'svc-data-pipeline' }, { key: wrongKey, nowSec: nowSec() })],
    ['alg none', async () => `${b64url({ alg: 'none' })}.${b64url({ iss: ISSUER, aud: AUDIENCE, sub: 'svc-data-pipeline', exp: nowSec() + 60 })}.`],
    ['garbage', async () => 'garbage'],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await sign({ sub: 'someone' }, { key, nowSec: nowSec() })).split('.');
        return `${h}.${b64url({ iss: ISSUER, aud: AUDIENCE, sub: 'svc-data-pipeline', exp: nowSec() + 3600 })}.${s}`;
      },
    ],
  ];
  it.each(cases)('%s: 401 invalid_token with the resource metadata', async (_label, make) => {
    const res = await call({ authorization: `Bearer ${await make()}` });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    expect(challenge).toContain(metadata);
    expect(challenge).toContain('error="invalid_token"');
  });

  it('unknown subject: 403 without a token challenge', async () => {
    const res = await call({ authorization: `Bearer ${await sign({ sub: 'nobody' }, { key, nowSec: nowSec() })}` });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBeNull();
  });

  it('token in the query string: 400 invalid_request, even when valid', async () => {
    const token = await sign({ sub: 'svc-data-pipeline' }, { key, nowSec: nowSec() });
    const res = await call({}, `/mcp?access_token=${token}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_request"');
  });

  it('a valid token and an API key pass', async () => {
    const token = await sign({ sub: 'svc-data-pipeline' }, { key, nowSec: nowSec() });
    expect(await (await call({ authorization: `Bearer ${token}` })).json()).toEqual({ agent: 'data-pipeline' });
    expect(await (await call({ 'x-api-key': API_KEY })).json()).toEqual({ agent: 'data-pipeline' });
  });
});

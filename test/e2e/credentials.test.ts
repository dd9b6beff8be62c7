// Credential injection: upstream credentials come from manifests only, the caller's own credential never
// travels upstream, and `identity: jwt` upstreams get a gateway-minted token stating who acts.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { connectClient, jsonOf, startFixture, startGateway, stopAll, type RunningFixture, type RunningGateway } from '../helpers/gateway.js';

const CALLER_KEY = 'caller-key-4f1c9e2d7a';
const UPSTREAM_SECRET = 'upstream-secret-93b1';

let plain: RunningFixture;
let minted: RunningFixture;
let gw: RunningGateway;

beforeAll(async () => {
  [plain, minted] = await Promise.all([startFixture('http'), startFixture('http')]);
  gw = await startGateway({
    servers: {
      plain: { transport: 'http', url: plain.url, headers: { 'x-upstream-key': UPSTREAM_SECRET } },
      minted: { transport: 'http', url: minted.url, identity: 'jwt' },
    },
    agents: {
      worker: {
        id: 'worker',
        owner: 'alice@example.com',
        credentials: { apiKeys: [`sha256:${createHash('sha256').update(CALLER_KEY).digest('hex')}`] },
        tools: { allow: ['*'] },
      },
    },
  });
}, 60_000);

afterAll(stopAll);

type Headers = Record<string, string>;

describe('credentials towards upstreams', () => {
  it('injects manifest headers and never forwards the caller’s own credential', async () => {
    const client = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${CALLER_KEY}` } });
    const { headers } = jsonOf<{ headers: Headers }>(await client.callTool({ name: 'plain__read_headers', arguments: {} }));
    expect(headers['x-upstream-key']).toBe(UPSTREAM_SECRET);
    expect(headers.authorization).toBeUndefined();
    expect(JSON.stringify(headers)).not.toContain(CALLER_KEY);
    // The injected secret is not visible to the agent through lists either.
    const { tools } = await client.listTools();
    expect(JSON.stringify(tools)).not.toContain(UPSTREAM_SECRET);
  });

  it('mints a short-lived token for identity: jwt upstreams, verifiable with the gateway’s JWKS', async () => {
    const client = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${CALLER_KEY}` } });
    const { headers } = jsonOf<{ headers: Headers }>(await client.callTool({ name: 'minted__read_headers', arguments: {} }));
    const auth = headers.authorization ?? '';
    expect(auth).toMatch(/^Bearer ey/);
    expect(auth).not.toContain(CALLER_KEY);
    const token = auth.slice('Bearer '.length);
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${gw.url}/.well-known/jwks.json`)), { audience: 'minted' });
    expect(payload.sub).toBe('worker');
    expect(payload.usr).toBe('alice@example.com');
    expect(typeof payload.wf).toBe('string');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBeLessThanOrEqual(300);
    // The same session reuses its token; it is not re-signed per call.
    const again = jsonOf<{ headers: Headers }>(await client.callTool({ name: 'minted__read_headers', arguments: {} }));
    expect(decodeJwt(again.headers.authorization!.slice(7)).iat).toBe(payload.iat);
  });
});

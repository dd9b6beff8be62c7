/**
 * A gateway with API keys and no issuer offers no OAuth authorization server: no resource metadata (404) and no
 * resource_metadata in its challenges, so OAuth-capable clients (mcp-remote) do not start a flow that cannot succeed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, initializeMessage, JSON_HEADERS, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { AUDIENCE, ISSUER, makeKey, writeJwksFile } from './helpers.js';

const KEY = `key-${randomUUID()}`;
let keysOnly: RunningGateway;
let withIssuer: RunningGateway;

beforeAll(async () => {
  const agents = { keyed: { id: 'keyed', credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] }, tools: { allow: ['conf__*'] } } };
  keysOnly = await startGateway({ servers: { conf: fixtureManifest() }, agents });
  const jwksFile = await writeJwksFile(await makeKey('k1'));
  withIssuer = await startGateway({ servers: { conf: fixtureManifest() }, agents, gatewayYaml: { auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] } } });
}, 60_000);
afterAll(() => stopAll());

const initialize = (url: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(initializeMessage()) });

describe('API keys without an issuer', () => {
  it('serves no protected-resource metadata, saying how to authenticate instead', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource/servers/conf/mcp']) {
      const res = await fetch(keysOnly.url + path);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { message: string }).message).toMatch(/no OAuth authorization server.*Authorization: Bearer <key>/);
    }
  });

  it('challenges without resource_metadata on /mcp, /servers/{name}/mcp and /a2a', async () => {
    const missing = await initialize(keysOnly.mcpUrl);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await initialize(keysOnly.serverUrl('conf'), { authorization: 'Bearer not-a-key' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="The API key is not recognised/);
    const a2a = await fetch(`${keysOnly.url}/a2a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(a2a.status).toBe(401);
    expect(a2a.headers.get('www-authenticate')).not.toContain('resource_metadata');
  });

  it('accepts the key as a Bearer header, as mcp-remote --header sends it', async () => {
    const res = await initialize(keysOnly.mcpUrl, { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('mcp-session-id')).toBeTruthy();
    await res.text();
  });

  it('with an issuer configured, the metadata names it and challenges point at the metadata', async () => {
    const meta = await fetch(`${withIssuer.url}/.well-known/oauth-protected-resource/mcp`);
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({ resource: withIssuer.mcpUrl, authorization_servers: [ISSUER] });
    const res = await initialize(withIssuer.mcpUrl);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${withIssuer.url}/.well-known/oauth-protected-resource/mcp"`);
  });
});

/** A session answers only the exact credential that opened it: other subjects, delegated tokens and API keys get 404. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, initializeMessage, JSON_HEADERS, readRpcMessages, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { delegate } from '../delegation/setup.js';
import { makeKey, sign, writeJwksFile, ISSUER, AUDIENCE, type TestKey } from './helpers.js';

let gw: RunningGateway;
let key: TestKey;
const KEY_A = `key-a-${randomUUID()}`;
const KEY_B = `key-b-${randomUUID()}`;

const token = (claims: Record<string, unknown>): Promise<string> => sign({ jti: randomUUID(), ...claims }, { key, nowSec: Math.floor(Date.now() / 1000) });
const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

beforeAll(async () => {
  key = await makeKey('issuer-1', 'ES256');
  const jwksFile = await writeJwksFile(key);
  gw = await startGateway({
    servers: { conf: fixtureManifest() },
    agents: {
      app: {
        id: 'app',
        owner: 'app-owner@example.com',
        credentials: { jwt: { client_id: 'app-1' } },
        tools: { allow: ['conf__*'] },
        delegation: { agents: ['app'], maxDepth: 2, maxChildren: 8 },
      },
      keyed: { id: 'keyed', credentials: { apiKeys: [`sha256:${sha256Hex(KEY_A)}`, `sha256:${sha256Hex(KEY_B)}`] }, tools: { allow: ['conf__*'] } },
    },
    gatewayYaml: { auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] } },
  });
}, 60_000);
afterAll(() => stopAll());

async function open(auth: Record<string, string>): Promise<string> {
  const res = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...JSON_HEADERS, ...auth }, body: JSON.stringify(initializeMessage()) });
  if (res.status !== 200) throw new Error(`initialize answered ${res.status}: ${await res.text()}`);
  await res.text();
  const sid = res.headers.get('mcp-session-id')!;
  const ack = await fetch(gw.mcpUrl, { method: 'POST', headers: { ...JSON_HEADERS, ...auth, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await ack.text();
  return sid;
}

function request(method: 'POST' | 'GET' | 'DELETE', sid: string, auth: Record<string, string>, body?: Record<string, unknown>): Promise<Response> {
  const headers = { ...(method === 'GET' ? { accept: 'text/event-stream' } : JSON_HEADERS), ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  return fetch(gw.mcpUrl, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
}

const echoCall = (text: string, id = 2) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'conf__echo', arguments: { text } } });
const addCall = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'conf__add', arguments: { a: 1, b: 2 } } };

/** Every method on the session is answered 404 "Session not found" for this credential. */
async function expectStranger(sid: string, auth: Record<string, string>): Promise<void> {
  for (const [method, body] of [['POST', addCall], ['GET', undefined], ['DELETE', undefined]] as const) {
    const res = await request(method, sid, auth, body);
    expect(res.status, `${method} with another credential`).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Session not found/);
  }
}

async function callOk(sid: string, auth: Record<string, string>): Promise<void> {
  const [reply] = await readRpcMessages(await request('POST', sid, auth, echoCall('still mine')));
  expect(reply).toMatchObject({ result: { content: [{ type: 'text' }] } });
}

describe('sessions are bound to the credential that opened them', () => {
  it('another subject whose token carries the same client_id (same agent) is told the session does not exist', async () => {
    const alice = bearer(await token({ sub: 'alice', client_id: 'app-1' }));
    const mallory = bearer(await token({ sub: 'mallory', client_id: 'app-1' }));
    const sid = await open(alice);
    await expectStranger(sid, mallory);
    // The owner's session is untouched, also with a refreshed token of the same principal.
    await callOk(sid, alice);
    await callOk(sid, bearer(await token({ sub: 'alice', client_id: 'app-1' })));
  });

  it("a self-delegated, narrower token cannot use its parent's session to reach tools outside its scope", async () => {
    const parentToken = await token({ sub: 'alice', client_id: 'app-1' });
    const sid = await open(bearer(parentToken));
    const narrow = await delegate(gw, parentToken, 'app', { scope: 'conf__echo' });
    await expectStranger(sid, bearer(narrow));
    await callOk(sid, bearer(parentToken));
  });

  it("one API key of an agent cannot use a session opened with another of the agent's keys", async () => {
    const sid = await open(bearer(KEY_A));
    await expectStranger(sid, bearer(KEY_B));
    await expectStranger(sid, { 'x-api-key': KEY_B });
    await callOk(sid, { 'x-api-key': KEY_A });
  });
});

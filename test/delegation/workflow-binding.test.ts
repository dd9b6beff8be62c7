/** A delegated token is bound to its workflow: X-Workflow-Id cannot move it out of a killed (or any other) workflow. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, initializeMessage, JSON_HEADERS, startGateway, stopAll, type RunningGateway } from '../helpers/gateway.js';
import { makeKey, sign, writeJwksFile, ISSUER, AUDIENCE, type TestKey } from '../identity/helpers.js';
import { startAgents, type RunningAgents } from '../a2a/agents.js';
import { ADMIN_YAML, adminGet, adminPost, claimsOf, clientFor, delegate, agentFile } from './setup.js';

let gw: RunningGateway;
let agents: RunningAgents;
let issuerKey: TestKey;

const rootToken = (): Promise<string> => sign({ sub: 'svc-root', jti: randomUUID() }, { key: issuerKey, nowSec: Math.floor(Date.now() / 1000) });

beforeAll(async () => {
  issuerKey = await makeKey('issuer-1', 'ES256');
  const jwksFile = await writeJwksFile(issuerKey);
  agents = await startAgents();
  gw = await startGateway({
    servers: { alpha: fixtureManifest(), 'echo-agent': { transport: 'a2a', url: agents.echo } },
    agents: {
      root: agentFile('root', { tools: { allow: ['alpha__*'] }, a2a: { allow: ['*'] }, delegation: { agents: ['child'], maxDepth: 1, maxChildren: 8 } }),
      child: agentFile('child', { canSetWorkflow: true, tools: { allow: ['alpha__*'] }, a2a: { allow: ['*'] } }),
    },
    gatewayYaml: { auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] }, admin: ADMIN_YAML },
  });
}, 60_000);
afterAll(async () => {
  await stopAll();
  await agents?.stop();
});

function initialize(token: string, workflowHeader?: string): Promise<Response> {
  return fetch(gw.mcpUrl, {
    method: 'POST',
    headers: { ...JSON_HEADERS, authorization: `Bearer ${token}`, ...(workflowHeader ? { 'x-workflow-id': workflowHeader } : {}) },
    body: JSON.stringify(initializeMessage()),
  });
}

function a2aSend(token: string, text: string, workflowHeader?: string): Promise<Response> {
  return fetch(`${gw.url}/a2a/echo-agent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(workflowHeader ? { 'x-workflow-id': workflowHeader } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'message/send', params: { message: { kind: 'message', messageId: randomUUID(), role: 'user', parts: [{ kind: 'text', text }] } } }),
  });
}

describe('a delegated token stays in the workflow it was minted in', () => {
  it('refuses an initialize whose X-Workflow-Id names another workflow, on /mcp and /servers/{name}/mcp', async () => {
    const childToken = await delegate(gw, await rootToken(), 'child');
    const wf = claimsOf(childToken).wf as string;
    for (const url of [gw.mcpUrl, gw.serverUrl('alpha')]) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { ...JSON_HEADERS, authorization: `Bearer ${childToken}`, 'x-workflow-id': `escape-${randomUUID()}` },
        body: JSON.stringify(initializeMessage()),
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('mcp-session-id')).toBeNull();
      const body = (await res.json()) as { error: { code: number; message: string; data: Record<string, unknown> } };
      expect(body.error).toMatchObject({ code: -32030, data: { reason: 'delegation_denied', workflowId: wf } });
      expect(body.error.message).toContain(`belongs to workflow ${wf}`);
    }
    // Naming its own workflow is fine.
    const same = await initialize(childToken, wf);
    expect(same.status).toBe(200);
    await same.text();
  });

  it('after its workflow is killed, no header lets it call tools or A2A agents again', async () => {
    const childToken = await delegate(gw, await rootToken(), 'child');
    const wf = claimsOf(childToken).wf as string;
    const child = await clientFor(gw, childToken, 'child');
    expect((await child.callTool({ name: 'alpha__echo', arguments: { text: 'before' } })).isError).toBeFalsy();
    expect((await adminPost(gw, `/workflows/${wf}/kill`)).status).toBe(200);

    const escape = `escape-${randomUUID()}`;
    const res = await initialize(childToken, escape);
    expect(res.status).toBe(403);
    await res.text();
    // The same token without a header lands in its own, killed, workflow.
    const again = await clientFor(gw, childToken, 'child-again');
    await expect(again.callTool({ name: 'alpha__echo', arguments: { text: 'after' } })).rejects.toThrow(/killed/);

    const a2aEscape = (await (await a2aSend(childToken, 'escape', escape)).json()) as { error?: { data?: Record<string, unknown> } };
    expect(a2aEscape.error?.data).toMatchObject({ reason: 'delegation_denied', workflowId: wf });
    const a2aOwn = (await (await a2aSend(childToken, 'own')).json()) as { error?: { data?: Record<string, unknown> } };
    expect(a2aOwn.error?.data).toMatchObject({ reason: 'workflow_paused', state: 'killed' });
    // No workflow was started under the name the header offered.
    expect((await adminGet(gw, `/workflows/${escape}`)).status).toBe(404);
  });

  it('a non-delegated agent with canSetWorkflow still joins the workflow it names', async () => {
    const token = await sign({ sub: 'svc-child', jti: randomUUID() }, { key: issuerKey, nowSec: Math.floor(Date.now() / 1000) });
    const wf = `joined-${randomUUID()}`;
    const res = await initialize(token, wf);
    expect(res.status).toBe(200);
    await res.text();
    expect((await adminGet(gw, `/workflows/${wf}`)).status).toBe(200);
  });
});

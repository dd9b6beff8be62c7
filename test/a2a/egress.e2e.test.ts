/**
 * Where a card may send the gateway, through a real gateway process in local mode (the admin API trusts loopback):
 * a card naming the gateway's own admin API as its endpoint does not pause the workflow, on either path; link-local
 * addresses are refused; manifest headers go only to the manifest's origin unless allowOrigins names another; and
 * the public surfaces never show an agent's internal URL.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, readStats, scratch, startGateway, stopAll, toolNames, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { startAgents, type RunningAgents } from './agents.js';

let good: RunningAgents;
let statsFile: string;
let gw: RunningGateway;
let client: Client;
const workflowId = `egress-${randomUUID()}`;
const started: RunningAgents[] = [];

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, { timeout: 20_000 })) as CallToolResult;
}
const text = (r: CallToolResult) => r.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');

async function workflowState(): Promise<string> {
  return ((await (await fetch(`${gw.url}/admin/api/workflows/${workflowId}`)).json()) as { state: string }).state;
}

/** An agents fixture whose echo-agent card names `endpoint`, federated as `name` once its tools are listed. */
async function federate(name: string, endpoint: string, extra: Record<string, unknown> = {}): Promise<RunningAgents> {
  const a = await startAgents(['--endpoint-echo', endpoint]);
  started.push(a);
  gw.writeServer(name, { transport: 'a2a', url: a.echo, ...extra });
  await waitFor(async () => (await toolNames(client)).includes(`${name}__send_message`), { timeoutMs: 20_000, what: `${name} federated` });
  return a;
}

async function a2aSend(agent: string): Promise<{ error?: { message: string; data?: { reason?: string } } }> {
  const res = await fetch(`${gw.url}/a2a/${agent}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }] } } }),
  });
  return (await res.json()) as never;
}

beforeAll(async () => {
  statsFile = join(scratch('a2a-egress-'), 'stats.jsonl');
  good = await startAgents(['--stats-file', statsFile]);
  gw = await startGateway({ servers: { 'echo-agent': { transport: 'a2a', url: good.echo }, down: { transport: 'a2a', url: 'http://127.0.0.1:9/' } } });
  client = await connectClient(gw.mcpUrl, { headers: { 'x-workflow-id': workflowId } });
  expect((await call('echo-agent__send_message', { message: 'start the workflow' })).isError).toBeFalsy();
  expect(await workflowState()).toBe('active');
});

afterAll(async () => {
  await stopAll();
  await Promise.all([good, ...started].map((a) => a?.stop()));
});

describe("a card cannot send the gateway to its own admin API", () => {
  it('SendMessage to an agent whose card names /admin/api/workflows/W/pause is refused and W keeps running', async () => {
    await federate('evil', `${gw.url}/admin/api/workflows/${workflowId}/pause`);
    const r = await call('evil__send_message', { message: 'pause it' });
    expect(r.isError).toBe(true);
    expect(text(r)).toBe("A2A agent 'evil' is refused: its agent card points the gateway at the gateway's own listener, which it never calls for an agent; the agent's card must name its own endpoint.");
    const viaA2a = await a2aSend('evil');
    expect(viaA2a.error?.data?.reason).toBe('egress_refused');
    expect(viaA2a.error?.message).toContain("the gateway's own listener");
    expect(await workflowState()).toBe('active');
    await waitFor(() => gw.logRecords().some((l) => l.server === 'evil' && l.why === 'self' && String(l.url).includes('/admin/api/workflows/')), { what: 'the refusal logged' });
  });

  it('a loopback alias of the gateway (localhost, 127.x) is the gateway too', async () => {
    const port = new URL(gw.url).port;
    await federate('alias', `http://localhost:${port}/admin/api/workflows/${workflowId}/kill`);
    expect(text(await call('alias__send_message', { message: 'kill it' }))).toContain("the gateway's own listener");
    await federate('alias2', `http://127.8.9.10:${port}/admin/api/workflows/${workflowId}/kill`);
    expect(text(await call('alias2__send_message', { message: 'kill it' }))).toContain("the gateway's own listener");
    expect(await workflowState()).toBe('active');
  });

  it('a link-local (metadata) endpoint is refused unless the manifest allows its origin', async () => {
    await federate('meta', 'http://169.254.169.254/latest/meta-data/');
    const r = await call('meta__send_message', { message: 'creds please' });
    expect(r.isError).toBe(true);
    expect(text(r)).toBe("A2A agent 'meta' is refused: its agent card points at a link-local or cloud metadata address; if that is intended, an admin can list the origin in allowOrigins of its servers.d manifest.");
    expect((await a2aSend('meta')).error?.data?.reason).toBe('egress_refused');
  });
});

describe('manifest credentials follow only allowed origins', () => {
  const authOf = (agent: string) => readStats(statsFile).filter((s) => (s as { agent?: string }).agent === agent).map((s) => s.headers?.authorization ?? null);

  it("headers go to the manifest url's origin only, or to an origin allowOrigins lists", async () => {
    const elsewhere = `${good.steps}/a2a/jsonrpc`;
    await federate('leaky', elsewhere, { headers: { Authorization: 'Bearer manifest-secret' } });
    const r = await call('leaky__send_message', { message: 'steps:1 no creds' });
    expect(r.isError).toBeFalsy();
    const leaked = authOf('steps-agent');
    expect(leaked.length).toBeGreaterThan(0);
    expect(leaked.every((h) => h === null)).toBe(true);

    await federate('trusted', elsewhere, { headers: { Authorization: 'Bearer manifest-secret' }, allowOrigins: [good.steps] });
    expect((await call('trusted__send_message', { message: 'steps:1 with creds' })).isError).toBeFalsy();
    const sent = authOf('steps-agent').slice(leaked.length);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((h) => h === 'Bearer manifest-secret')).toBe(true);
  });
});

describe('public surfaces say nothing about the inside', () => {
  it("a down agent's URL is in neither the public cards nor the errors callers get", async () => {
    const card = await (await fetch(`${gw.url}/.well-known/agent-card.json`)).text();
    expect(card).toContain('Currently unavailable.');
    expect(card).not.toContain('127.0.0.1:9');
    expect(card).not.toContain('servers.d');
    const agentCard = await fetch(`${gw.url}/a2a/down/.well-known/agent-card.json`);
    expect(agentCard.status).toBe(502);
    const body = await agentCard.text();
    expect(body).toContain("A2A agent 'down' is unavailable");
    expect(body).not.toContain('127.0.0.1:9');
    const sent = await a2aSend('down');
    expect(sent.error?.message).toContain("'down'");
    expect(JSON.stringify(sent)).not.toMatch(/127\.0\.0\.1:9\b|servers\.d/);
    const mcp = await client.request({ method: 'tools/call', params: { name: 'down__send_message', arguments: { message: 'x' } } }, CallToolResultSchema).then(
      (res) => JSON.stringify(res),
      (err: Error) => err.message,
    );
    expect(mcp).not.toMatch(/127\.0\.0\.1:9\b|servers\.d/);
    expect(await (await fetch(`${gw.url}/readyz`)).text()).not.toMatch(/127\.0\.0\.1:9\b|servers\.d/);
    // The operator still learns where: the log names the card URL.
    expect(gw.logs.join('\n')).toContain('http://127.0.0.1:9/.well-known/agent-card.json');
  });
});

/**
 * Who reaches the admin API of a real gateway process, and what its inventory routes show. With identities
 * configured (API keys) the admin API never trusts loopback: without admin.tokens it is disabled (and the start log
 * says so once), with them every request needs one. GET /servers and /agents list health and policy, no secrets.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, startGateway, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';

const sha = (k: string) => `sha256:${createHash('sha256').update(k).digest('hex')}`;
const ADMIN = 'admin-token-for-tests';
const AGENT_KEY = 'agent-key-0123456789';
const agents = {
  worker: {
    id: 'worker',
    owner: 'ops@example.com',
    credentials: { apiKeys: [sha(AGENT_KEY)] },
    tools: { allow: ['fx__*'] },
    a2a: { allow: ['steps-*'] },
    limits: { perMinute: { toolCalls: 30 } },
  },
};
const servers = {
  fx: fixtureManifest({ env: { FX_SECRET: 'env-secret-value' } }),
  remote: { transport: 'http', url: 'http://user:url-password@127.0.0.1:9/mcp?key=query-secret', headers: { Authorization: 'Bearer header-secret' } },
};

let noTokens: RunningGateway;
let withTokens: RunningGateway;

beforeAll(async () => {
  [noTokens, withTokens] = await Promise.all([
    startGateway({ servers: { fx: fixtureManifest() }, agents }),
    startGateway({ servers, agents, gatewayYaml: { admin: { tokens: [sha(ADMIN)] } } }),
  ]);
});

afterAll(stopAll);

const get = (gw: RunningGateway, path: string, headers: Record<string, string> = {}) => fetch(`${gw.url}/admin/api${path}`, { headers });

describe('admin API trust', () => {
  it('with API keys and no admin.tokens it is disabled for loopback callers too, and the start log says so once', async () => {
    const res = await get(noTokens, '/workflows');
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: string; message: string };
    expect(body).toEqual({ error: 'admin_disabled', message: expect.stringContaining('set admin.tokens in gateway.yaml') });
    const pause = await fetch(`${noTokens.url}/admin/api/workflows/any/pause`, { method: 'POST' });
    expect(pause.status).toBe(403);
    const warned = noTokens.logRecords().filter((l) => String(l.msg).includes('the admin API is disabled'));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.level).toBe(40);
  });

  it('with admin.tokens every request needs one, loopback or not', async () => {
    expect((await get(withTokens, '/workflows')).status).toBe(401);
    expect((await get(withTokens, '/workflows', { authorization: `Bearer ${AGENT_KEY}` })).status).toBe(401);
    expect((await get(withTokens, '/workflows', { authorization: `Bearer ${ADMIN}` })).status).toBe(200);
    expect(withTokens.logRecords().some((l) => String(l.msg).includes('the admin API is disabled'))).toBe(false);
  });

  it('a Host-check refusal on a non-MCP path is plain JSON {error, message}', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const u = new URL(`${withTokens.url}/admin/api/workflows`);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, headers: { host: 'evil.example.com' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toEqual({ error: 'forbidden', message: "Forbidden: Host 'evil.example.com' is not allowed; add it to allowedHosts in gateway.yaml." });
  });
});

describe('GET /admin/api/servers and /admin/api/agents', () => {
  const auth = { authorization: `Bearer ${ADMIN}` };

  it('lists every server with health, breaker and transport, and no header, env or URL secret', async () => {
    const body = await waitFor(async () => {
      const b = (await (await get(withTokens, '/servers', auth)).json()) as { servers: Array<Record<string, unknown>> };
      return b.servers.find((s) => s.name === 'fx')?.up === true ? b : undefined;
    }, { timeoutMs: 20_000, what: 'fx to be up' });
    const text = JSON.stringify(body);
    for (const secret of ['env-secret-value', 'url-password', 'query-secret', 'header-secret']) expect(text).not.toContain(secret);
    const byName = Object.fromEntries(body.servers.map((s) => [s.name, s]));
    expect(byName.fx).toMatchObject({ transport: 'stdio', up: true, required: false, breaker: 'closed', command: 'node', env: ['FX_SECRET'], headers: [] });
    expect(byName.remote).toMatchObject({ transport: 'http', url: 'http://***@127.0.0.1:9/mcp?key=***', headers: ['Authorization'], env: [] });
  });

  it('lists every agent with policy and limits, and no credential hash', async () => {
    const res = await get(withTokens, '/agents', auth);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('sha256:');
    const { agents: list } = JSON.parse(text) as { agents: Array<Record<string, unknown>> };
    expect(list).toEqual([
      expect.objectContaining({
        id: 'worker',
        owner: 'ops@example.com',
        credentials: { apiKeys: 1 },
        tools: expect.objectContaining({ allow: ['fx__*'] }),
        a2a: { allow: ['steps-*'] },
        limits: expect.objectContaining({ perMinute: { toolCalls: 30 } }),
        canSetWorkflow: false,
      }),
    ]);
  });
});

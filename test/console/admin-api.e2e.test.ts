/** Console sign-in, CSRF and the live admin routes over plain HTTP, against a real gateway. */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { connectClient, fixtureManifest, startGateway, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';

const ADMIN = `admin-${randomUUID()}`;
const KEY = `key-${randomUUID()}`;
let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway({
    gatewayYaml: { admin: { tokens: [`sha256:${createHash('sha256').update(ADMIN).digest('hex')}`] } },
    servers: { conf: fixtureManifest() },
    agents: { ops: { id: 'ops', credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] }, tools: { allow: ['conf__*'] }, limits: { perMinute: { toolCalls: 100 } } } },
  });
}, 60_000);
afterAll(() => stopAll());

async function signIn(token: string): Promise<{ status: number; cookie?: string; csrf?: string; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const body = (await res.json()) as Record<string, unknown>;
  const cookie = res.headers.get('set-cookie') ?? undefined;
  return { status: res.status, cookie, csrf: body.csrf as string | undefined, body };
}

describe('console session', () => {
  it('exchanges an admin token for an HttpOnly SameSite=Strict cookie and a CSRF token', async () => {
    const s = await signIn(ADMIN);
    expect(s.status).toBe(200);
    expect(s.cookie).toMatch(/^switchyard_console=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    expect(s.csrf).toMatch(/^[\w-]{30,}$/);
    expect(JSON.stringify(s.body)).not.toContain(ADMIN);
    const cookie = s.cookie!.split(';')[0]!;
    const list = await fetch(`${gw.url}/admin/api/workflows`, { headers: { cookie } });
    expect(list.status).toBe(200);
    const who = (await (await fetch(`${gw.url}/ui/api/session`, { headers: { cookie } })).json()) as { csrf: string; admin: string };
    expect(who).toEqual({ csrf: s.csrf, admin: expect.stringMatching(/^admin:[0-9a-f]{12}$/) });
    // The export link of the audit page is a plain GET: the cookie alone downloads it.
    const exported = await fetch(`${gw.url}/admin/api/audit/export`, { headers: { cookie } });
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toContain('application/x-ndjson');
  });

  it('refuses writes without the right CSRF token, and takes them with it', async () => {
    const s = await signIn(ADMIN);
    const cookie = s.cookie!.split(';')[0]!;
    const c = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${KEY}` } });
    await c.callTool({ name: 'conf__add', arguments: { a: 1, b: 2 } });
    const { workflows } = (await (await fetch(`${gw.url}/admin/api/workflows?agent=ops`, { headers: { cookie } })).json()) as { workflows: Array<{ id: string }> };
    const id = workflows[0]!.id;
    const variants: Array<Record<string, string>> = [{ cookie }, { cookie, 'x-csrf-token': 'wrong' }];
    for (const headers of variants) {
      const res = await fetch(`${gw.url}/admin/api/workflows/${id}/pause`, { method: 'POST', headers });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toBe('csrf');
    }
    const ok = await fetch(`${gw.url}/admin/api/workflows/${id}/pause`, { method: 'POST', headers: { cookie, 'x-csrf-token': s.csrf! } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { state: string }).state).toBe('paused');
  });

  it('gives nothing to a wrong token, a missing cookie or a signed-out session', async () => {
    expect((await signIn('wrong')).status).toBe(401);
    expect((await signIn('')).status).toBe(401);
    const notJson = await fetch(`${gw.url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
    expect((await fetch(`${gw.url}/admin/api/workflows`, { headers: { cookie: 'switchyard_console=forged' } })).status).toBe(401);
    const s = await signIn(ADMIN);
    const cookie = s.cookie!.split(';')[0]!;
    expect((await fetch(`${gw.url}/ui/api/session`, { method: 'DELETE', headers: { cookie } })).status).toBe(403);
    const out = await fetch(`${gw.url}/ui/api/session`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': s.csrf! } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await fetch(`${gw.url}/admin/api/workflows`, { headers: { cookie } })).status).toBe(401);
  });

  it('serves the console with a strict Content-Security-Policy and no external resources', async () => {
    const res = await fetch(`${gw.url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect((await fetch(`${gw.url}/ui`, { redirect: 'manual' })).headers.get('location')).toBe('/ui/');
    const app = await (await fetch(`${gw.url}/ui/app.js`)).text();
    expect(app).not.toMatch(/from\s*['"]https?:/);
  });
});

describe('live admin routes', () => {
  const admin = { authorization: `Bearer ${ADMIN}` };

  it('streams finished steps as server-sent events', async () => {
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/admin/api/events`, { headers: admin, signal: controller.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    await reader.read(); // the ": connected" comment: the subscription is live
    const c = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${KEY}` } });
    const marker = Math.floor(Math.random() * 1e9);
    await c.callTool({ name: 'conf__add', arguments: { a: marker, b: 0 } });
    await waitFor(async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return text.includes('"tool":"conf__add"') ? true : undefined;
    }, { what: 'a step event' });
    expect(text).toMatch(/event: step\ndata: \{[^\n]*"agent":"ops"/);
    controller.abort();
  });

  it('answers the overview, tokens, usage and tools, and says what is wrong with bad input', async () => {
    const overview = (await (await fetch(`${gw.url}/admin/api/overview`, { headers: admin })).json()) as { workflows: Record<string, number>; refusalsLastHour: unknown[] };
    expect(overview.workflows).toHaveProperty('active');
    expect(Array.isArray(overview.refusalsLastHour)).toBe(true);
    expect(await (await fetch(`${gw.url}/admin/api/tokens`, { headers: admin })).json()).toEqual({ tokens: [] });
    const usage = (await (await fetch(`${gw.url}/admin/api/agents/ops/usage`, { headers: admin })).json()) as { windows: { perMinute: { toolCalls: number } } };
    expect(usage.windows.perMinute.toolCalls).toBeGreaterThan(0);
    const tools = (await (await fetch(`${gw.url}/admin/api/servers/conf/tools`, { headers: admin })).json()) as { tools: Array<{ name: string; inputSchema: unknown; exposed: boolean }> };
    expect(tools.tools.find((t) => t.name === 'echo')).toMatchObject({ exposed: true, inputSchema: { type: 'object' } });
    expect((await fetch(`${gw.url}/admin/api/servers/nope/tools`, { headers: admin })).status).toBe(404);
    const badStep = await fetch(`${gw.url}/admin/api/workflows/x?afterStep=abc`, { headers: admin });
    expect(badStep.status).toBe(400);
    const longQ = await fetch(`${gw.url}/admin/api/audit?q=${'x'.repeat(201)}`, { headers: admin });
    expect(longQ.status).toBe(400);
    expect(((await longQ.json()) as { message: string }).message).toMatch(/at most 200/);
  });

  it('counts an upstream session that ended on its own among the server restarts', async () => {
    const c = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${KEY}` } });
    await c.callTool({ name: 'conf__crash', arguments: {} }).catch(() => undefined);
    const restarts = await waitFor(async () => {
      const { servers } = (await (await fetch(`${gw.url}/admin/api/servers`, { headers: admin })).json()) as { servers: Array<{ name: string; restarts: { ended: number } }> };
      const ended = servers.find((s) => s.name === 'conf')!.restarts.ended;
      return ended > 0 ? ended : undefined;
    }, { what: 'the crash counted' });
    expect(restarts).toBe(1);
  });
});

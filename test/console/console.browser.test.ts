/**
 * The web console in Debian's Chromium (playwright-core), against a real gateway with a real upstream, while an MCP
 * SDK client generates traffic. Screenshots of each page go to test-output/console/ (git-ignored).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, fixtureManifest, REPO_ROOT, startGateway, stopAll, textOf, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { AUDIENCE, ISSUER, makeKey, sign, writeJwksFile, type TestKey } from '../identity/helpers.js';
import { delegate } from '../delegation/setup.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-output', 'console');
const ADMIN = `console-admin-${randomUUID()}`;

let gw: RunningGateway;
let browser: Browser;
let page: Page;
let key: TestKey;
let root: Client;
let workflowId: string;

type RpcError = { code?: number; message: string; data?: { reason?: string } };
const refusal = (p: Promise<unknown>): Promise<RpcError | undefined> => p.then(() => undefined, (e: RpcError) => e);

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function go(hash: string, heading: RegExp): Promise<void> {
  await page.goto(`${gw.url}/ui/#/${hash}`);
  await page.getByRole('heading', { level: 2, name: heading }).waitFor();
}

async function token(agent: string): Promise<string> {
  return sign({ sub: `svc-${agent}`, jti: randomUUID() }, { key, nowSec: Math.floor(Date.now() / 1000), ttlSec: 3600 });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); .ci/run does this`);
  mkdirSync(SHOTS, { recursive: true });
  key = await makeKey('console-issuer', 'ES256');
  const jwksFile = await writeJwksFile(key);
  gw = await startGateway({
    servers: { conf: fixtureManifest() },
    agents: {
      root: {
        id: 'root',
        owner: 'rita@example.com',
        team: 'ops',
        credentials: { jwt: { sub: 'svc-root' } },
        tools: { allow: ['conf__*'], rules: [{ tool: 'conf__echo', approval: 'human' }, { tool: 'conf__delete_record', args: { id: 'tmp_*' } }] },
        delegation: { agents: ['helper'], maxDepth: 1, maxChildren: 4 },
        limits: { perDay: { toolCalls: 1000 } },
      },
      helper: { id: 'helper', owner: 'rita@example.com', credentials: { jwt: { sub: 'svc-helper' } }, tools: { allow: ['conf__add', 'conf__whoami'] } },
    },
    gatewayYaml: { auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] }, admin: { tokens: [`sha256:${createHash('sha256').update(ADMIN).digest('hex')}`] } },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
});

describe('web console', () => {
  it('shows no data for a wrong admin token', async () => {
    await page.goto(`${gw.url}/ui/`);
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/not an admin token/);
    expect(await page.getByRole('navigation').count()).toBe(0);
    const direct = await page.evaluate(async () => (await fetch('/admin/api/workflows')).status);
    expect(direct).toBe(401);
    await shot('sign-in-refused');
  });

  it('signs in with the admin token into an HttpOnly SameSite=Strict session', async () => {
    // By keyboard alone: the field is labelled, Enter submits, and Tab reaches the page links.
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.getByLabel('Admin token').press('Enter');
    await page.getByRole('heading', { level: 2, name: 'Overview' }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Overview');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'Servers' }).waitFor();
    const cookie = (await page.context().cookies()).find((c) => c.name === 'switchyard_console');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('switchyard_console');
    await shot('overview');
  });

  it('shows a workflow appearing live while the client calls tools', async () => {
    await go('workflows', /Workflows/);
    root = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${await token('root')}` } });
    expect(textOf(await root.callTool({ name: 'conf__add', arguments: { a: 2, b: 3 } }))).toBe('5');
    const row = page.locator('tr[data-workflow]', { hasText: 'root' }).first();
    await row.waitFor({ timeout: 15_000 });
    workflowId = (await row.getAttribute('data-workflow'))!;
    expect(workflowId).toBeTruthy();
    await shot('workflows');
  });

  it('shows the workflow as a tree of steps in order, with a refusal and its reason', async () => {
    const denied = await refusal(root.callTool({ name: 'conf__delete_record', arguments: { id: 'prod_users' } }));
    expect(denied?.data?.reason).toBe('policy_denied');
    await root.callTool({ name: 'conf__whoami', arguments: {} });
    await go(`workflows/${encodeURIComponent(workflowId)}`, /Workflow/);
    await expect.poll(() => page.locator('.step[data-step]').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    const steps = (await page.locator('.step[data-step]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-step')))));
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    const refused = page.locator('.step', { hasText: 'policy_denied' });
    expect(await refused.count()).toBe(1);
    expect(await refused.textContent()).toContain('delete_record');
    await page.getByLabel('Search this trace').fill('whoami');
    await expect.poll(() => page.locator('.step[data-step]').count()).toBe(1);
    await page.getByLabel('Search this trace').fill('');
    await shot('workflow');
  });

  it('pauses from the page (the next call is refused workflow_paused) and resumes', async () => {
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => page.getByTestId('workflow-state').textContent()).toBe('paused');
    const paused = await refusal(root.callTool({ name: 'conf__add', arguments: { a: 1, b: 1 } }));
    expect(paused?.data?.reason).toBe('workflow_paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.getByTestId('workflow-state').textContent()).toBe('active');
    expect(textOf(await root.callTool({ name: 'conf__add', arguments: { a: 1, b: 1 } }))).toBe('2');
  });

  it('shows an approval while the client waits; approving it in the page completes the call', async () => {
    await go('approvals', /Approvals/);
    const id = `deploy-${randomUUID()}`;
    // A right-to-left override and a long value: shown escaped and whole, never hidden or cut.
    const text = `${id} ${'x'.repeat(5000)} \u202eexe.txt`;
    const call = root.callTool({ name: 'conf__echo', arguments: { text } });
    call.catch(() => {}); // observed below; a failed assertion before then must not leave it unhandled
    const card = page.locator('article.approval', { hasText: id });
    await card.waitFor({ timeout: 15_000 });
    const shown = (await card.locator('pre.args').textContent())!;
    expect(shown).toContain('x'.repeat(5000));
    expect(shown).toContain('\\u202eexe.txt');
    expect(shown).not.toContain('\u202e');
    await shot('approvals');
    await card.getByLabel('Reason').fill('release window');
    await card.getByRole('button', { name: 'Approve' }).click();
    expect(textOf(await call)).toBe(text);
    await page.locator('table[aria-label="Decided approvals"] tr', { hasText: 'release window' }).waitFor();
  });

  it('denying an approval in the page refuses the call approval_denied', async () => {
    const text = `drop-${randomUUID()}`;
    const call = refusal(root.callTool({ name: 'conf__echo', arguments: { text } }));
    const card = page.locator('article.approval', { hasText: text });
    await card.waitFor({ timeout: 15_000 });
    await card.getByRole('button', { name: 'Deny' }).click();
    const err = await call;
    expect(err?.data?.reason).toBe('approval_denied');
  });

  it('finds a call in the audit trail by an argument value', async () => {
    const needle = `needle${randomUUID().slice(0, 8)}`;
    await root.callTool({ name: 'conf__whoami', arguments: { note: `look for ${needle} here` } });
    await go('audit', /Audit/);
    await page.getByLabel('Search in arguments').fill(needle);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(async () => page.locator('tr[data-record]').count(), { timeout: 15_000 }).toBe(1);
    expect(await page.locator('tr[data-record]').textContent()).toContain(needle);
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page.getByText('Chain intact').waitFor();
    await shot('audit');
  });

  it('revoking a delegated token on the agents page makes its next call fail', async () => {
    const childToken = await delegate(gw, await token('root'), 'helper');
    const child = await connectClient(gw.mcpUrl, { headers: { authorization: `Bearer ${childToken}` } });
    expect(textOf(await child.callTool({ name: 'conf__add', arguments: { a: 4, b: 4 } }))).toBe('8');
    await go('agents', /Agents/);
    const rootCard = page.getByRole('article', { name: 'agent root' });
    const revoke = rootCard.getByRole('button', { name: /^Revoke token/ }).first();
    await revoke.waitFor();
    await shot('agents');
    await revoke.click();
    await rootCard.getByRole('status').filter({ hasText: /Revoked/ }).waitFor();
    const after = await refusal(child.callTool({ name: 'conf__add', arguments: { a: 1, b: 2 } }));
    expect(after, 'the revoked token must not call again').toBeDefined();
  });

  it('shows servers with health and their tools with schemas', async () => {
    await go('servers', /Servers/);
    await page.getByRole('button', { name: 'Show tools of conf' }).click();
    await page.getByRole('cell', { name: 'echo', exact: true }).waitFor();
    await shot('servers');
  });

  it('refuses a write without the CSRF token, and signs out', async () => {
    const status = await page.evaluate(async (id) => (await fetch(`/admin/api/workflows/${encodeURIComponent(id)}/pause`, { method: 'POST' })).status, workflowId);
    expect(status).toBe(403);
    const state = await (await fetch(`${gw.url}/admin/api/workflows/${encodeURIComponent(workflowId)}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    expect(state.state).toBe('active');
    await go('overview', /Overview/);
    await page.locator('tr', { hasText: workflowId }).waitFor();
    await shot('overview-after-traffic');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    expect(await page.evaluate(async () => (await fetch('/admin/api/workflows')).status)).toBe(401);
  });
});

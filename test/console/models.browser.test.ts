/**
 * The console's models page and the overview's spend today in Debian's Chromium (playwright-core), against a real
 * gateway with the fake model provider, after model calls through /v1/chat/completions. Screenshots go to
 * test-output/console/ (git-ignored).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, stopAll, type RunningGateway } from '../helpers/gateway.js';
import { ADMIN, adminGet, agent, modelRecords, newKey, startFakeProvider, startModelGateway, type FakeProvider } from '../helpers/models.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-output', 'console');
const alice = newKey();

let fake: FakeProvider;
let gw: RunningGateway;
let browser: Browser;
let page: Page;

interface SpendGroup {
  key: string | null;
  calls: number;
  tokens: { input: number; output: number; cachedInput: number; total: number };
  costUsd: number;
}

async function chat(model: string, content: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 50 }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** The dollar amount a page cell shows ("$0.0000250" → 0.000025). */
const dollars = (text: string | null): number => Number(/\$([0-9.]+)/.exec(text ?? '')?.[1] ?? NaN);
/** The page shows three significant digits below a cent: equal within half a unit of the third. */
const sameDollars = (shown: number, exact: number): void => expect(Math.abs(shown - exact)).toBeLessThanOrEqual(exact * 0.005);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); .ci/run does this`);
  mkdirSync(SHOTS, { recursive: true });
  fake = await startFakeProvider();
  gw = await startModelGateway({ fakeUrl: fake.url, agents: { alice: agent('alice', alice, { team: 'research' }) } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${gw.url}/ui/`);
  await page.getByLabel('Admin token').fill(ADMIN.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console pages' }).waitFor();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
  await fake?.stop();
});

describe('models page', () => {
  it('shows each model with the tokens and cost of its calls, and charts them', async () => {
    await chat('gpt-fake', 'hello');
    await chat('gpt-fake', 'again');
    await chat('gpt-cached', 'hi');
    const rows = await modelRecords(gw, 'alice', 3);
    const fakeRows = rows.filter((r) => r.tool === 'gpt-fake');
    expect(fakeRows).toHaveLength(2);
    const tokens = fakeRows.reduce((n, r) => n + (r.tokens ?? 0), 0);
    const cost = fakeRows.reduce((n, r) => n + r.model!.costUsd, 0);
    expect(tokens).toBeGreaterThan(0);
    expect(cost).toBeGreaterThan(0);

    await page.getByRole('navigation', { name: 'Console pages' }).getByRole('link', { name: 'Models' }).click();
    await page.getByRole('heading', { level: 2, name: 'Models' }).waitFor();
    const row = page.getByRole('table', { name: 'Spend' }).getByRole('row').filter({ has: page.getByRole('cell', { name: 'gpt-fake', exact: true }) });
    await row.waitFor();
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells[1]).toBe('2');
    expect(Number(cells[5])).toBe(tokens);
    sameDollars(dollars(cells[6]!), cost);
    expect(await page.getByRole('table', { name: 'Spend' }).getByRole('cell', { name: 'gpt-cached', exact: true }).count()).toBe(1);

    // The chart: one stacked bar segment per model in the current hour, its title naming the model and its cost.
    const chart = page.locator('figure.spend-chart svg[role="img"]');
    await expect.poll(() => chart.getAttribute('aria-label')).toMatch(/^Cost per hour by model: .+\$0\.0\d+/);
    const segments = await chart.locator('rect > title').allTextContents();
    expect(segments.some((t) => /gpt-fake: \$0\.0\d+/.test(t))).toBe(true);
    expect(segments.some((t) => /gpt-cached: \$0\.\d+/.test(t))).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'models.png'), fullPage: true });

    // By team: alice's team holds all three calls.
    await page.locator('select[name="by"]').selectOption('team');
    await page.getByRole('button', { name: 'Show' }).click();
    const team = page.getByRole('table', { name: 'Spend' }).getByRole('row').filter({ has: page.getByRole('cell', { name: 'research', exact: true }) });
    await team.waitFor();
    expect((await team.getByRole('cell').allTextContents())[1]).toBe('3');
    await page.screenshot({ path: join(SHOTS, 'models-by-team.png'), fullPage: true });
  });

  it('says so when From is after To, without asking the gateway', async () => {
    await page.goto(`${gw.url}/ui/#/models`);
    await page.getByRole('heading', { level: 2, name: 'Models' }).waitFor();
    await page.getByLabel('From', { exact: true }).fill('2026-12-02T10:00');
    await page.getByLabel('To', { exact: true }).fill('2026-12-01T10:00');
    await page.getByRole('button', { name: 'Show' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('From must not be after To.');
  });

  it('the overview shows spend today', async () => {
    const today = await adminGet<{ total: SpendGroup }>(gw, `/spend?from=${new Date(new Date().setHours(0, 0, 0, 0)).toISOString()}`);
    expect(today.total.calls).toBe(3);
    await page.goto(`${gw.url}/ui/#/overview`);
    const shown = page.locator('.spend-today');
    await shown.waitFor();
    const value = dollars(await shown.textContent());
    expect(value).toBeGreaterThan(0);
    sameDollars(value, today.total.costUsd);
    expect(await page.getByText('in 3 model calls').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'overview-spend.png'), fullPage: true });
  });
});

describe('GET /admin/api/spend?bucket=', () => {
  const get = (q: string) => fetch(`${gw.url}/admin/api/spend${q}`, { headers: { authorization: `Bearer ${ADMIN.key}` } });

  it('answers a series per hour whose calls add up to the groups', async () => {
    const r = await adminGet<{ bucket: string; groups: SpendGroup[]; series: Array<SpendGroup & { start: string }> }>(gw, '/spend?by=model&bucket=hour');
    expect(r.bucket).toBe('hour');
    for (const g of r.groups) expect(r.series.filter((s) => s.key === g.key).reduce((n, s) => n + s.calls, 0)).toBe(g.calls);
    for (const s of r.series) expect(Date.parse(s.start) % 3_600_000).toBe(0);
  });

  it('refuses an unknown bucket and a range of too many buckets with a clear 400', async () => {
    const bad = await get('?bucket=week');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toBe('bucket must be one of hour, day, got "week"');
    const wide = await get(`?bucket=hour&from=${new Date(Date.now() - 40 * 86_400_000).toISOString()}`);
    expect(wide.status).toBe(400);
    expect(((await wide.json()) as { message: string }).message).toMatch(/at most 800 buckets per query: narrow from\/to or use a larger bucket/);
  });
});

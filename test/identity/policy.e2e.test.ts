// Argument rules and live limits through a real gateway process and the stats-recording feature fixture: adversarial
// arguments stay cheap, every matching rule holds, duplicate JSON keys are judged as forwarded, reloads reach sessions.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { connectClient, readRpcMessages, rawSession, sessionHeaders, waitFor } from '../helpers/gateway.js';
import { call, launchFixtureHome, localAgent, refusalOf, runTag, stopEverything, upstreamCallsWithText } from '../helpers/audit-harness.js';

const run = runTag();

afterAll(stopEverything);

const RULES = [
  { tool: 'fx__log', args: { message: '/data/*/*.csv' } },
  { tool: 'fx__e*', args: { text: '*' } },
  { tool: 'fx__echo', args: { text: 'ok-*' } },
];

describe('argument rules through the gateway', () => {
  it('answers adversarial 60 KB arguments at once while /healthz stays fast, and refuses values over the bound', async () => {
    const { home, gw } = await launchFixtureHome(localAgent({}, { tools: { allow: ['*'], rules: RULES } }));
    const client = await connectClient(gw.mcpUrl);
    const adversarial = `/data/${'/'.repeat(60_000)}`;
    const t0 = performance.now();
    let settled = false;
    const calls = Promise.all(Array.from({ length: 4 }, () => call(client, 'fx__log', { level: 'info', message: adversarial }))).finally(() => {
      settled = true;
    });
    let slowestHealth = 0;
    let probes = 0;
    do {
      const h0 = performance.now();
      const res = await fetch(`${gw.url}/healthz`);
      await res.text();
      slowestHealth = Math.max(slowestHealth, performance.now() - h0);
      probes++;
    } while (!settled);
    const outcomes = await calls;
    const elapsed = performance.now() - t0;
    for (const o of outcomes) {
      const r = refusalOf(o);
      expect(r.data).toMatchObject({ reason: 'policy_denied', argument: 'message' });
      expect(r.message).toContain('must match "/data/*/*.csv"');
    }
    // A backtracking matcher spends seconds per call here (and /healthz waits behind it); a linear one, milliseconds.
    expect(elapsed, `${probes} health probes`).toBeLessThan(3_000);
    expect(slowestHealth).toBeLessThan(1_500);
    expect(upstreamCallsWithText(home.statsFile, '/data/')).toHaveLength(0);

    const tooLong = refusalOf(await call(client, 'fx__echo', { text: `ok-${'x'.repeat(70_000)}` }));
    expect(tooLong.data).toMatchObject({ reason: 'policy_denied', argument: 'text' });
    expect(tooLong.message).toMatch(/is 70003 characters long, more than the 65536 a rule checks/);
    const fine = await call(client, 'fx__log', { level: 'info', message: `/data/${run}/x.csv` });
    expect(fine.ok).toBe(true);
  }, 60_000);

  it('enforces every rule that matches the tool, and judges duplicate JSON keys by the value that is forwarded', async () => {
    const { home, gw } = await launchFixtureHome(localAgent({}, { tools: { allow: ['*'], rules: RULES } }));
    const client = await connectClient(gw.mcpUrl);
    const evil = refusalOf(await call(client, 'fx__echo', { text: `evil-${run}` }));
    expect(evil.data).toMatchObject({ reason: 'policy_denied', argument: 'text' });
    expect(evil.message).toContain('must match "ok-*"');
    expect(upstreamCallsWithText(home.statsFile, `evil-${run}`)).toHaveLength(0);
    expect((await call(client, 'fx__echo', { text: `ok-${run}` })).ok).toBe(true);
    expect(refusalOf(await call(client, 'fx__echo', { text: ['ok-1'] })).data).toMatchObject({ reason: 'policy_denied' });
    expect((await call(client, 'fx__echo', { text: `ok-caf\u00e9-${run}` })).ok).toBe(true);
    expect(refusalOf(await call(client, 'fx__echo', { text: `ok-cafe\u0301-${run}` })).message).toMatch(/not NFC-normalized/);

    const sid = await rawSession(gw.mcpUrl);
    const raw = async (id: number, argsJson: string) => {
      const body = `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"fx__echo","arguments":${argsJson}}}`;
      const msgs = await readRpcMessages(await fetch(gw.mcpUrl, { method: 'POST', headers: sessionHeaders(sid), body }));
      return msgs.find((m) => m.id === id)!;
    };
    const lastEvil = await raw(5, `{"text":"ok-dup1-${run}","text":"evil-dup1-${run}"}`);
    expect(lastEvil.error).toMatchObject({ data: { reason: 'policy_denied' } });
    const lastOk = await raw(6, `{"text":"evil-dup2-${run}","text":"ok-dup2-${run}"}`);
    expect(lastOk.result).toMatchObject({ structuredContent: { text: `ok-dup2-${run}` } });
    expect(upstreamCallsWithText(home.statsFile, `ok-dup2-${run}`)).toHaveLength(1);
    for (const marker of [`ok-dup1-${run}`, `evil-dup1-${run}`, `evil-dup2-${run}`]) expect(upstreamCallsWithText(home.statsFile, marker)).toHaveLength(0);
  }, 60_000);
});

describe('limits follow reloads of agents.d into open sessions', () => {
  it('applies a lowered per-minute limit and a newly joined team limit to a session opened before', async () => {
    const { home, gw } = await launchFixtureHome(localAgent({ perMinute: { toolCalls: 100 } }), { teams: { data: { perMinute: { toolCalls: 1 } } } });
    const client = await connectClient(gw.mcpUrl);
    for (let i = 0; i < 2; i++) expect((await call(client, 'fx__echo', { text: `before${i}-${run}` })).ok).toBe(true);
    const reloads = () => gw.logs.filter((l) => l.includes('agents reloaded') && l.includes('"changed":["local"]')).length;
    // Written beside and renamed into place, so the watcher never reads half a file.
    const rewrite = async (manifest: Record<string, unknown>) => {
      const seen = reloads();
      const tmp = join(home.agentsDir, 'local.yaml.tmp');
      writeFileSync(tmp, toYaml(manifest));
      renameSync(tmp, join(home.agentsDir, 'local.yaml'));
      await waitFor(() => reloads() > seen, { timeoutMs: 20_000, what: 'agents reloaded' });
    };

    await rewrite(localAgent({ perMinute: { toolCalls: 1 } }));
    const lowered = refusalOf(await call(client, 'fx__echo', { text: `after-${run}` }));
    expect(lowered.data).toMatchObject({ reason: 'rate_limited', limit: 'perMinute.toolCalls', max: 1 });
    expect(upstreamCallsWithText(home.statsFile, `after-${run}`)).toHaveLength(0);

    await rewrite(localAgent({}, { team: 'data' }));
    expect((await call(client, 'fx__echo', { text: `team1-${run}` })).ok).toBe(true);
    const team = refusalOf(await call(client, 'fx__echo', { text: `team2-${run}` }));
    expect(team.data).toMatchObject({ reason: 'rate_limited', limit: 'team.perMinute.toolCalls', max: 1 });
  }, 60_000);
});

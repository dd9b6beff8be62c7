// `switchyard stdio` and `switchyard serve` on one data dir (the README's Claude Desktop + Cursor setup): both write one
// audit chain that verifies, with every step of both in it. A writer that cannot write turns /readyz red, shows in
// /metrics and exits non-zero at shutdown saying how many records were lost.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI, REPO_ROOT, connectClient, onOutputLines, requireBuild, waitFor } from '../helpers/gateway.js';
import { call, fixtureHome, makeHome, statsFixture, launch, metricsText, runCli, runTag, stopEverything, type GatewayHome } from '../helpers/audit-harness.js';

requireBuild();
afterAll(stopEverything);

async function connectStdio(home: GatewayHome): Promise<{ client: Client; stderr: string[] }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'stdio', '--config', home.configPath, '--servers', home.serversDir, '--agents', home.agentsDir, '--data', home.dataDir],
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_FORMAT: 'json' } as Record<string, string>,
    stderr: 'pipe',
  });
  const stderr: string[] = [];
  transport.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const client = new Client({ name: 'stdio-shared', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nstderr:\n${stderr.join('')}`);
  }
  return { client, stderr };
}

interface Row {
  id: number;
  workflow_id: string;
  step: number;
  args: string | null;
}

function rows(home: GatewayHome): Row[] {
  const db = new Database(join(home.dataDir, 'switchyard.db'), { readonly: true });
  try {
    return db.prepare("SELECT id, workflow_id, step, args FROM audit WHERE kind = 'tools/call' ORDER BY id").all() as Row[];
  } finally {
    db.close();
  }
}

/** An unlabelled sample's value; throws when the metric is not exported at all. */
async function sample(url: string, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await metricsText(url));
  if (!m) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}

async function readyz(url: string): Promise<{ status: number; body: { status: string; audit: { ok: boolean; error?: string; queued?: number } } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; audit: { ok: boolean; error?: string } } };
}

describe('stdio and serve on one data dir', () => {
  it('both write one verifiable chain holding every step of both', async () => {
    const home = fixtureHome();
    const gw = await launch(home);
    const http = await connectClient(gw.mcpUrl);
    const { client: stdio, stderr } = await connectStdio(home);
    const tag = runTag();
    const sent: string[] = [];
    // Alternate so each process's flush follows one by the other (the batched writer flushes within 100 ms).
    for (let i = 0; i < 5; i++) {
      for (const [name, client] of [['http', http], ['stdio', stdio]] as const) {
        const text = `${tag}-${name}-${i}`;
        expect((await call(client, 'fx__echo', { text })).ok).toBe(true);
        sent.push(text);
        await waitFor(() => rows(home).some((r) => r.args?.includes(text)), { timeoutMs: 15_000, what: `audit row for ${text}` });
      }
    }
    const ready = await readyz(gw.url);
    expect(ready.status).toBe(200);
    expect(ready.body.audit).toEqual({ ok: true });
    expect(await sample(gw.url, 'switchyard_audit_write_failures_total')).toBe(0);

    await stdio.close();
    await gw.stop();
    expect(gw.proc.exitCode).toBe(0);
    expect(stderr.join('')).not.toContain('could not be written');

    const stored = rows(home);
    const texts = stored.map((r) => (JSON.parse(r.args ?? '{}') as { text?: string }).text);
    expect(texts).toEqual(sent);
    expect(new Set(stored.map((r) => r.workflow_id)).size).toBe(2);
    expect(new Set(stored.map((r) => `${r.workflow_id}#${r.step}`)).size).toBe(stored.length);
    const verify = await runCli(['audit', 'verify', '--data', home.dataDir]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^ok: \d+ records verified, HMAC-keyed/);
  }, 120_000);
});

describe('a gateway whose audit writes fail', () => {
  it('turns /readyz red with the reason, counts the failures in /metrics and exits 1 naming the lost records', async () => {
    const home = fixtureHome();
    const gw = await launch(home);
    const http = await connectClient(gw.mcpUrl);
    expect((await call(http, 'fx__echo', { text: 'before' })).ok).toBe(true);
    await waitFor(() => rows(home).length === 1, { timeoutMs: 15_000, what: 'the first audit row' });
    const db = new Database(join(home.dataDir, 'switchyard.db'));
    db.exec("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;");
    db.close();

    expect((await call(http, 'fx__echo', { text: 'lost-1' })).ok).toBe(true);
    expect((await call(http, 'fx__echo', { text: 'lost-2' })).ok).toBe(true);
    const red = await waitFor(async () => {
      const r = await readyz(gw.url);
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 15_000, what: '/readyz 503' });
    expect(red.body.status).toBe('not ready');
    expect(red.body.audit).toMatchObject({ ok: false, error: 'simulated write failure', queued: 2 });
    expect(await sample(gw.url, 'switchyard_audit_write_failures_total')).toBeGreaterThanOrEqual(1);
    expect(await sample(gw.url, 'switchyard_audit_queue_depth')).toBe(2);

    await gw.stop();
    expect(gw.proc.exitCode).toBe(1);
    const lossLine = gw.logs.find((l) => l.includes('could not be written at shutdown'));
    expect(lossLine, gw.logs.slice(-5).join('\n')).toBeDefined();
    expect(JSON.parse(lossLine!)).toMatchObject({ level: 50, unwritten: 2 });
    expect(rows(home)).toHaveLength(1);
  }, 120_000);
});

describe('switchyard stdio stopped by SIGTERM', () => {
  it('writes its queued audit records before exiting 0', async () => {
    // A flush interval far longer than the test: the record can only reach the database through the shutdown flush.
    const home = makeHome({ servers: (h) => ({ fx: statsFixture(h) }), gatewayYaml: { audit: { flushMs: 600_000 } } });
    const proc = spawn(process.execPath, [CLI, 'stdio', '--config', home.configPath, '--servers', home.serversDir, '--agents', home.agentsDir, '--data', home.dataDir], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_FORMAT: 'json' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: string[] = [];
    const err: string[] = [];
    onOutputLines(proc, (line, stream) => (stream === 'stdout' ? out : err).push(line));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const send = (msg: Record<string, unknown>): void => void proc.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', ...msg })}\n`);
    const answer = (id: number) => waitFor(() => out.map((l) => JSON.parse(l) as { id?: number; result?: unknown }).find((m) => m.id === id), { timeoutMs: 30_000, what: `response ${id}` });
    try {
      await stopByTerm();
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    async function stopByTerm(): Promise<void> {
      send({ id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'sigterm', version: '1' } } });
      await answer(1);
      send({ method: 'notifications/initialized' });
      send({ id: 2, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'queued-at-sigterm' } } });
      expect((await answer(2)).result).toBeDefined();
      expect(rows(home)).toHaveLength(0);
      proc.kill('SIGTERM');
      expect(await exited, err.join('\n')).toBe(0);
      expect(rows(home).map((r) => (JSON.parse(r.args ?? '{}') as { text?: string }).text)).toEqual(['queued-at-sigterm']);
    }
  }, 60_000);
});

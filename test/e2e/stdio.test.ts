// `switchyard stdio` driven by the SDK's StdioClientTransport, and `switchyard validate` exit codes and output.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { stringify as toYaml } from 'yaml';
import { CLI, REPO_ROOT, callWithProgress, fixtureManifest, requireBuild, scratch, stdioHome, stopAll, textOf, toolNames } from '../helpers/gateway.js';

const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await stopAll();
});

requireBuild();

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('switchyard stdio', () => {
  it('serves the federated MCP over stdio: list, call, progress and sampling', async () => {
    const memoryFile = join(scratch('switchyard-stdio-memory-'), 'memory.jsonl');
    const { args } = stdioHome({
      fx: fixtureManifest(),
      memory: { command: 'node', args: ['node_modules/@modelcontextprotocol/server-memory/dist/index.js'], env: { MEMORY_FILE_PATH: memoryFile }, session: 'shared' },
    });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args,
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const stderr: string[] = [];
    transport.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const client = new Client({ name: 'stdio-e2e', version: '1.0.0' }, { capabilities: { sampling: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'stdio sampled' } }));
    clients.push(client);
    try {
      await client.connect(transport);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nstderr:\n${stderr.join('')}`);
    }
    expect(client.getServerVersion()?.name).toBe('switchyard');
    const names = await toolNames(client);
    expect(names).toEqual(expect.arrayContaining(['fx__echo', 'fx__slow', 'memory__read_graph']));
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'over stdio' } }))).toBe('over stdio');
    const { result: slow, progress } = await callWithProgress(client, 'fx__slow', { ms: 300, steps: 3 });
    expect(textOf(slow)).toBe('done after 3 steps');
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    expect(textOf(await client.callTool({ name: 'fx__sample', arguments: { prompt: 'q' } }))).toBe('stdio sampled');
    await expect(client.callTool({ name: 'fx__nope', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    // stdout carries only JSON-RPC: logs went to stderr.
    expect(stderr.join('')).toContain('"level"');
    await client.close();
  });
});

describe('switchyard stdio --token', () => {
  const key = 'stdio-key-0123456789';
  const hash = createHash('sha256').update(key).digest('hex');
  const setup = () => {
    const dir = scratch('switchyard-stdio-token-');
    for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'servers.d', 'fx.yaml'), toYaml(fixtureManifest()));
    writeFileSync(join(dir, 'gateway.yaml'), '{}\n');
    writeFileSync(join(dir, 'agents.d', 'narrow.yaml'), toYaml({ id: 'narrow', credentials: { apiKeys: [`sha256:${hash}`] }, tools: { allow: ['fx__echo'] } }));
    return ['--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')];
  };

  it('acts as the agent the token names, with that agent\'s policy', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'stdio', '--token', key, ...setup()], cwd: REPO_ROOT, stderr: 'pipe' });
    const client = new Client({ name: 'stdio-token', version: '1.0.0' }, { capabilities: {} });
    clients.push(client);
    await client.connect(transport);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['fx__echo']);
    await expect(client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/Unknown tool: fx__add/);
  });

  it('refuses an unknown token with exit code 1 and says why', async () => {
    const r = await run(['stdio', '--token', 'not-a-key', ...setup()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--token refused/);
  });
});

describe('switchyard validate', () => {
  it('prints file:line: message for every problem and exits 1 on a broken dir', async () => {
    const dir = scratch('switchyard-validate-');
    writeFileSync(join(dir, 'bad.yaml'), 'name: Bad_Name\ncommand: node\ntimeoutMs: -1\n');
    writeFileSync(join(dir, 'broken.yaml'), 'command: [\n');
    writeFileSync(join(dir, 'good.json'), JSON.stringify({ mcpServers: { ok: { command: 'node', args: ['x.js'] } } }));
    const r = await run(['validate', dir]);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith(dir));
    expect(lines.some((l) => l.startsWith(`${join(dir, 'bad.yaml')}:1: `) && l.includes('name'))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${join(dir, 'bad.yaml')}:3: `) && l.includes('timeoutMs'))).toBe(true);
    expect(lines.some((l) => /broken\.yaml:\d+: .*YAML/.test(l))).toBe(true);
    for (const l of lines) expect(l).toMatch(/^\/.+:\d+: .+/);
  });

  it('exits 0 on the shipped servers.d and agents.d', async () => {
    const r = await run(['validate', 'servers.d', 'agents.d']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('server everything');
    expect(r.stdout).toContain('server memory');
  });
});

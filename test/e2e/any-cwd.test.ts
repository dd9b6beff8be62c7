// The shipped configuration started from a folder outside the package, as a client launching the README's stdio snippet does.
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI, REPO_ROOT, requireBuild, scratch, stopAll, toolNames } from '../helpers/gateway.js';

const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await stopAll();
});

requireBuild();

describe('switchyard stdio from any working directory', () => {
  it("serves the shipped servers' tools with the README's Claude Desktop command run from a temp folder", async () => {
    const elsewhere = scratch('switchyard-anywhere-');
    const transport = new StdioClientTransport({ command: 'node', args: [CLI, 'stdio'], cwd: elsewhere, stderr: 'pipe' });
    const stderr: string[] = [];
    transport.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const client = new Client({ name: 'anywhere', version: '1.0.0' });
    clients.push(client);
    try {
      await client.connect(transport);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nstderr:\n${stderr.join('')}`);
    }
    const names = await toolNames(client);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'memory__read_graph']));
    const loaded = stderr
      .join('')
      .split('\n')
      .filter((l) => l.includes('"msg":"configuration:'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatchObject({
      level: 30,
      config: `${REPO_ROOT}gateway.yaml`,
      serversDir: `${REPO_ROOT}servers.d`,
      agentsDir: `${REPO_ROOT}agents.d`,
      dataDir: `${REPO_ROOT}data`,
      servers: 2,
      agents: 0,
    });
    await client.close();
  });
});

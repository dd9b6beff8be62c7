// Resource routing learned by the gateway itself from the upstreams' lists (not from what a client listed), unknown
// reads recorded as failed steps, and shared URIs qualified by the servers' configuration order.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Resource } from '@modelcontextprotocol/sdk/types.js';
import { stringify as toYaml } from 'yaml';
import { CLI, REPO_ROOT, connectClient, fixtureManifest, readStats, scratch, startGateway, stdioHome, stopAll, toolNames, waitFor, whoami } from '../helpers/gateway.js';
import { allAudit, metricsText } from '../helpers/audit-harness.js';

const HELLO = 'fixture://static/hello';
const BLOB = 'fixture://static/blob';

const stdioClients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(stdioClients.map((c) => c.close()));
  await stopAll();
});

const readsOf = (file: string, uri: string) => readStats(file).filter((l) => l.method === 'resources/read' && l.params?.uri === uri).length;

async function allResources(c: Client): Promise<Resource[]> {
  const out: Resource[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await c.listResources(cursor ? { cursor } : {});
    out.push(...page.resources);
    cursor = page.nextCursor;
    if (!cursor) return out;
  }
  throw new Error('resources/list did not end');
}

const textOfRead = (r: { contents: Array<Record<string, unknown>> }) => String(r.contents[0]?.text);

describe('routes the gateway learns itself', () => {
  it('reads URIs and template URIs on a fresh stdio gateway with two servers before anything was listed', async () => {
    const statsA = join(scratch('switchyard-routes-stats-'), 'a.jsonl');
    const { args } = stdioHome({ alpha: fixtureManifest({}, ['--stats-file', statsA]), beta: fixtureManifest() }, 'switchyard-routes-stdio-');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args,
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'routes-stdio', version: '1.0.0' }, { capabilities: {} });
    stdioClients.push(client);
    await client.connect(transport);
    expect(JSON.parse(textOfRead(await client.readResource({ uri: 'fixture://items/42' })))).toEqual({ id: '42' });
    expect(textOfRead(await client.readResource({ uri: HELLO }))).toBe('Hello from the feature fixture.');
    expect(readsOf(statsA, HELLO)).toBe(1); // both serve it: the first configured server keeps the plain URI
  }, 60_000);

  it('records a read no server serves as a failed step without a metric series of its own, and relearns on list_changed', async () => {
    const gw = await startGateway({ servers: { alpha: fixtureManifest(), beta: fixtureManifest() } });
    const c = await connectClient(gw.mcpUrl);
    const nowhere = 'fixture://nowhere/at-all';
    await expect(c.readResource({ uri: nowhere })).rejects.toMatchObject({ code: -32002 });
    const row = await waitFor(async () => (await allAudit(gw.url)).find((r) => r.tool === nowhere), { timeoutMs: 10_000, what: 'the audit row of the unknown read' });
    expect(row).toMatchObject({ server: null, outcome: 'error', reason: 'resource_not_found' });
    expect(await metricsText(gw.url)).not.toContain('nowhere');

    // A resource added upstream after the gateway learned that server's list is found once the upstream says so.
    const dynamic = 'fixture://dynamic/1';
    await expect(c.readResource({ uri: dynamic })).rejects.toMatchObject({ code: -32002 });
    await c.callTool({ name: 'alpha__change_resources', arguments: {} });
    const read = await waitFor(() => c.readResource({ uri: dynamic }), { timeoutMs: 10_000, what: `a read of ${dynamic}` });
    expect(textOfRead(read)).toBe(dynamic);
  }, 60_000);
});

describe('shared URIs qualified by configuration order', () => {
  it('keeps the plain URI with the first configured server even when the other one lists it first', async () => {
    const dir = scratch('switchyard-routes-order-');
    const statsA = join(dir, 'a.jsonl');
    // alpha pages one resource at a time, so beta's copy of the blob arrives on an earlier merged page.
    const gw = await startGateway({ servers: { alpha: fixtureManifest({}, ['--stats-file', statsA, '--page-size', '1']), beta: fixtureManifest() } });
    const c = await connectClient(gw.mcpUrl);
    const uris = (await allResources(c)).map((r) => r.uri).filter((u) => u.endsWith(BLOB)).sort();
    expect(uris).toEqual([BLOB, `switchyard+beta:${BLOB}`]);
    await c.readResource({ uri: BLOB });
    expect(readsOf(statsA, BLOB)).toBe(1);
  }, 60_000);

  it('lets a changed server keep its URIs, and a server added later never take them', async () => {
    const dir = scratch('switchyard-routes-reload-');
    const statsZ = join(dir, 'z.jsonl');
    const statsT = join(dir, 't.jsonl');
    const gw = await startGateway({ servers: { zeta: fixtureManifest({}, ['--stats-file', statsZ]), theta: fixtureManifest({}, ['--stats-file', statsT]) } });
    const c = await connectClient(gw.mcpUrl);
    const helloOwners = async () => (await allResources(c)).map((r) => r.uri).filter((u) => u.endsWith(HELLO)).sort();
    expect(await helloOwners()).toEqual([HELLO, `switchyard+zeta:${HELLO}`]); // theta.yaml sorts first

    // theta's manifest changes (it restarts), and alpha.yaml, which sorts before both, is dropped in.
    const before = (await whoami(c, 'theta')).pid;
    gw.writeServer('theta', fixtureManifest({ env: { CHANGED: '1' } }, ['--stats-file', statsT]));
    gw.writeServer('alpha', fixtureManifest());
    await waitFor(async () => (await toolNames(c)).includes('alpha__echo') && (await whoami(c, 'theta')).pid !== before, { timeoutMs: 20_000, what: 'the reload' });
    expect(await helloOwners()).toEqual([HELLO, `switchyard+alpha:${HELLO}`, `switchyard+zeta:${HELLO}`]);
    const fresh = await connectClient(gw.mcpUrl);
    await fresh.readResource({ uri: HELLO });
    expect([readsOf(statsT, HELLO), readsOf(statsZ, HELLO)]).toEqual([1, 0]);
  }, 60_000);
});

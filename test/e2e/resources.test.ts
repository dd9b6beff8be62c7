// Resource URIs two servers share: the first lister keeps the plain URI, the other's copy is qualified
// (`switchyard+{server}:{uri}`), and reads, subscriptions and updates each reach their own server.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, fixtureManifest, readStats, scratch, startGateway, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';

const HELLO = 'fixture://static/hello';
let gw: RunningGateway;
let statsA: string;
let statsB: string;

beforeAll(async () => {
  const dir = scratch('switchyard-resources-');
  statsA = join(dir, 'a.jsonl');
  statsB = join(dir, 'b.jsonl');
  gw = await startGateway({
    servers: {
      alpha: fixtureManifest({}, ['--stats-file', statsA]),
      beta: fixtureManifest({}, ['--stats-file', statsB]),
    },
  });
}, 60_000);

afterAll(stopAll);

const readsOf = (file: string, uri: string) => readStats(file).filter((l) => l.method === 'resources/read' && (l.params as { uri?: string })?.uri === uri).length;

describe('resource URIs shared by two servers', () => {
  it('lists both copies, reads each from its own server, and routes subscriptions and updates', async () => {
    const client = await connectClient(gw.mcpUrl);
    const { resources } = await client.listResources();
    const hellos = resources.map((r) => r.uri).filter((u) => u.endsWith(HELLO));
    expect(hellos).toEqual([HELLO, `switchyard+beta:${HELLO}`]);

    await client.readResource({ uri: HELLO });
    await client.readResource({ uri: `switchyard+beta:${HELLO}` });
    await waitFor(() => readsOf(statsA, HELLO) === 1 && readsOf(statsB, HELLO) === 1, { timeoutMs: 5000, what: 'one read at each server' });

    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await client.subscribeResource({ uri: `switchyard+beta:${HELLO}` });
    expect(readStats(statsB).some((l) => l.method === 'resources/subscribe' && (l.params as { uri?: string })?.uri === HELLO)).toBe(true);
    await client.callTool({ name: 'beta__touch_resource', arguments: { uri: HELLO } });
    await waitFor(() => updates.includes(`switchyard+beta:${HELLO}`), { timeoutMs: 5000, what: 'qualified resources/updated' });
    expect(updates).not.toContain(HELLO);
  });

  it('answers a qualified URI naming an unknown server as not found', async () => {
    const client = await connectClient(gw.mcpUrl);
    await expect(client.readResource({ uri: `switchyard+nosuch:${HELLO}` })).rejects.toThrow(/-32002|not found/i);
  });
});

// The list cache through a real gateway: warm lists ask no upstream, a list_changed makes every client list again,
// and clients that declare different capabilities get the lists their upstream shows them (server-everything offers
// its sampling tool only to clients that declare sampling).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVERYTHING,
  connectClient,
  readStats,
  scratch,
  startFixture,
  startGateway,
  stopAll,
  toolNames,
  waitFor,
  type RunningGateway,
} from '../helpers/gateway.js';

let gw: RunningGateway;
const stats = join(scratch('switchyard-list-cache-'), 'fx.jsonl');
const toolLists = () => readStats(stats).filter((l) => l.kind === 'request' && l.method === 'tools/list').length;

beforeAll(async () => {
  const fx = await startFixture('http', ['--stats-file', stats]);
  gw = await startGateway({
    servers: { fx: { transport: 'http', url: fx.url }, everything: { command: 'node', args: [EVERYTHING, 'stdio'] } },
    gatewayYaml: { listTimeoutMs: 20_000 },
  });
}, 60_000);

afterAll(stopAll);

describe('list cache', () => {
  it('answers warm lists without asking the upstream, also for a second client declaring the same capabilities', async () => {
    const a = await connectClient(gw.mcpUrl);
    const first = await toolNames(a);
    expect(first).toContain('fx__echo');
    const asked = toolLists();
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(await toolNames(a)).toEqual(first);
    const b = await connectClient(gw.mcpUrl);
    expect(await toolNames(b)).toEqual(first);
    expect(toolLists()).toBe(asked);
  });

  it('checks a call against the list its client was answered, without listing the upstream again', async () => {
    const c = await connectClient(gw.mcpUrl);
    await toolNames(c);
    const asked = toolLists();
    const r = await c.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(r.isError).toBeFalsy();
    expect(toolLists()).toBe(asked);
  });

  it('lists again for every client once the upstream says its tools changed', async () => {
    const a = await connectClient(gw.mcpUrl);
    const b = await connectClient(gw.mcpUrl);
    await toolNames(a);
    await toolNames(b);
    const asked = toolLists();
    await a.callTool({ name: 'fx__change_tools', arguments: {} });
    // Each client's upstream session hears the change; the next list of either shows the new tool.
    const added = await waitFor(async () => (await toolNames(b)).find((n) => n.startsWith('fx__dynamic_')), { what: 'the added tool in a list' });
    expect(await toolNames(a)).toContain(added);
    expect(toolLists()).toBeGreaterThan(asked);
  });

  it('keeps lists apart for clients that declare different capabilities', async () => {
    const plain = await connectClient(gw.mcpUrl);
    const sampling = await connectClient(gw.mcpUrl, { handlers: { sampling: () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'ok' } }) } });
    const plainFirst = await toolNames(plain);
    expect(plainFirst).toContain('everything__echo');
    expect(plainFirst).not.toContain('everything__trigger-sampling-request');
    expect(await toolNames(sampling)).toContain('everything__trigger-sampling-request');
    // The second variant did not overwrite the first.
    expect(await toolNames(plain)).toEqual(plainFirst);
    const other = await connectClient(gw.mcpUrl);
    expect(await toolNames(other)).not.toContain('everything__trigger-sampling-request');
  });
});

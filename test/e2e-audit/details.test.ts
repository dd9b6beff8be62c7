// Audit details through a real gateway: a cancelled call is stored as outcome `error` with reason `cancelled`, and
// `bytes` holds the size of the upstream's response on the wire (stdio and Streamable HTTP upstreams).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, startFixture, waitFor, type RunningFixture } from '../helpers/gateway.js';
import { allAudit, call, launch, makeHome, runTag, statsFixture, stopEverything, type LaunchedGateway } from '../helpers/audit-harness.js';

type StoredRecord = Awaited<ReturnType<typeof allAudit>>[number] & { bytes: number | null };

let gw: LaunchedGateway;
let httpFixture: RunningFixture;
const tag = runTag();

beforeAll(async () => {
  httpFixture = await startFixture('http');
  const home = makeHome({ servers: (h) => ({ fx: statsFixture(h), fxh: { url: httpFixture.url } }) });
  gw = await launch(home);
});

afterAll(async () => {
  await stopEverything();
  await httpFixture?.stop();
});

async function recordWhere(match: (r: StoredRecord) => boolean, what: string): Promise<StoredRecord> {
  return waitFor(async () => ((await allAudit(gw.url)) as StoredRecord[]).find(match), { timeoutMs: 15_000, what });
}

describe('audit record details', () => {
  it('stores a call the client cancelled as outcome error, reason cancelled', async () => {
    const client = await connectClient(gw.mcpUrl);
    const ac = new AbortController();
    let firstProgress!: () => void;
    const progressed = new Promise<void>((r) => (firstProgress = r));
    const pending = client.request(
      { method: 'tools/call', params: { name: 'fx__slow', arguments: { ms: 20_000, steps: 40 } } },
      CallToolResultSchema,
      { signal: ac.signal, onprogress: () => firstProgress() },
    );
    await progressed;
    ac.abort('changed my mind');
    await expect(pending).rejects.toThrow();
    const rec = await recordWhere((r) => r.tool === 'slow', 'the audit record of the cancelled call');
    expect(rec).toMatchObject({ outcome: 'error', reason: 'cancelled', server: 'fx', bytes: null });
    const filtered = await allAudit(gw.url, 'outcome=error');
    expect(filtered.map((r) => r.id)).toContain(rec.id);
  });

  for (const server of ['fx', 'fxh']) {
    it(`stores the upstream response size in bytes (${server})`, async () => {
      const client = await connectClient(gw.mcpUrl);
      // Two-byte characters: a count of characters instead of bytes would come out at about half.
      const text = `${tag}-${server}-${'é'.repeat(3000)}`;
      const res = await call(client, `${server}__echo`, { text });
      if (!res.ok) throw new Error(`echo failed: ${res.message}`);
      const resultBytes = Buffer.byteLength(JSON.stringify(res.result));
      const rec = await recordWhere((r) => r.args?.text === text, `the audit record of the ${server} echo`);
      expect(rec.outcome).toBe('ok');
      // The upstream's message is the result plus its JSON-RPC envelope (and, over SSE, nothing else counted).
      expect(rec.bytes).toBeGreaterThanOrEqual(resultBytes);
      expect(rec.bytes).toBeLessThan(resultBytes + 200);
    });
  }
});

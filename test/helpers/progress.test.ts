// callWithProgress keeps every progress notification sent before the response, also when they arrive together.
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { callWithProgress } from './gateway.js';

/** A raw server that answers tools/call with its progress notifications and the result in one synchronous burst. */
async function burstClient(): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const send = (m: Record<string, unknown>): void => void serverSide.send({ jsonrpc: '2.0', ...m } as JSONRPCMessage);
  serverSide.onmessage = (raw) => {
    const m = raw as { id?: number; method?: string; params?: { protocolVersion?: string; _meta?: { progressToken?: string | number } } };
    if (m.method === 'initialize') send({ id: m.id, result: { protocolVersion: m.params!.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'burst', version: '1' } } });
    if (m.method === 'tools/call') {
      const progressToken = m.params!._meta!.progressToken!;
      for (let step = 1; step <= 3; step++) send({ method: 'notifications/progress', params: { progressToken, progress: step, total: 3 } });
      send({ id: m.id, result: { content: [{ type: 'text', text: 'done' }] } });
    }
  };
  await serverSide.start();
  const client = new Client({ name: 'burst-test', version: '1' });
  await client.connect(clientSide);
  return client;
}

describe('callWithProgress', () => {
  it('returns the progress notifications that arrived in the same burst as the response', async () => {
    const client = await burstClient();
    const { result, progress } = await callWithProgress(client, 'slow', {});
    expect(result.content).toEqual([{ type: 'text', text: 'done' }]);
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    const again = await callWithProgress(client, 'slow', {});
    expect(again.progress.map((p) => p.progress)).toEqual([1, 2, 3]);
    await client.close();
  });
});

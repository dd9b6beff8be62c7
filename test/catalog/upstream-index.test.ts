// The per-upstream-session index: listed in full once, kept until invalidated, retried after a failed listing.
import { describe, expect, it } from 'vitest';
import { UpstreamIndex } from '../../src/catalog/upstream-index.js';
import type { UpstreamSession } from '../../src/upstream/session.js';

function fakeSession(pages: Record<string, Record<string, unknown>>, failFirst = false) {
  const calls: string[] = [];
  let failed = !failFirst;
  const session = {
    serverCapabilities: { tools: {}, prompts: {}, resources: {} },
    request: (method: string, params: { cursor?: string }) => {
      calls.push(`${method}${params.cursor ? `@${params.cursor}` : ''}`);
      if (!failed) {
        failed = true;
        return Promise.resolve({ jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'not yet' } });
      }
      const key = params.cursor ? `${method}@${params.cursor}` : method;
      return Promise.resolve({ jsonrpc: '2.0', id: 1, result: pages[key] ?? {} });
    },
  };
  return { session: session as unknown as UpstreamSession, calls };
}

describe('UpstreamIndex', () => {
  it('lists every page of resources and templates once and relists after invalidation', async () => {
    const { session, calls } = fakeSession({
      'resources/list': { resources: [{ uri: 'a://1' }], nextCursor: 'p2' },
      'resources/list@p2': { resources: [{ uri: 'a://2' }] },
      'resources/templates/list': { resourceTemplates: [{ uriTemplate: 'a://t/{id}' }] },
    });
    const idx = new UpstreamIndex(() => 1000);
    const first = await idx.resourcesOf(session);
    expect([...first.uris]).toEqual(['a://1', 'a://2']);
    expect(first.templates).toEqual(['a://t/{id}']);
    expect(idx.peekResources(session)).toBe(first);
    await idx.resourcesOf(session);
    expect(calls.filter((c) => c.startsWith('resources/list'))).toEqual(['resources/list', 'resources/list@p2']);
    idx.invalidate(session, 'resources');
    expect(idx.peekResources(session)).toBeUndefined();
    await idx.resourcesOf(session);
    expect(calls.filter((c) => c === 'resources/list')).toHaveLength(2);
  });

  it('indexes prompts by name and lists again after a failed listing', async () => {
    const { session, calls } = fakeSession({ 'prompts/list': { prompts: [{ name: 'greet' }] } }, true);
    const idx = new UpstreamIndex(() => 1000);
    await expect(idx.promptsOf(session)).rejects.toThrow('not yet');
    expect([...(await idx.promptsOf(session)).keys()]).toEqual(['greet']);
    await idx.promptsOf(session);
    expect(calls).toEqual(['prompts/list', 'prompts/list']);
  });
});

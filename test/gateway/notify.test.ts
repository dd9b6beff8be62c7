import { describe, expect, it } from 'vitest';
import { ClientSession } from '../../src/gateway/client-session.js';
import { admitsLevel, changedKind, hasListed, markListed, mostVerbose } from '../../src/gateway/notify.js';
import type { UpstreamSession } from '../../src/upstream/session.js';

const client = (logLevel?: string): ClientSession => {
  const cs = new ClientSession({ protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } }, { agentId: 'a', principal: 'a', chain: ['a'], via: 'local' }, 'wf', {});
  cs.logLevel = logLevel;
  return cs;
};
const log = (level: string) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { level, data: 'x' } });
const upstreamAt = (logLevel?: string) => ({ logLevel }) as unknown as UpstreamSession;

describe('log levels on a shared upstream', () => {
  it('sets the upstream to the most verbose level asked, counting clients that asked none as info', () => {
    expect(mostVerbose([client(), client()])).toBeUndefined();
    expect(mostVerbose([client('error'), client('debug')])).toBe('debug');
    expect(mostVerbose([client('error'), client()])).toBe('info');
    expect(mostVerbose([client('debug'), client()])).toBe('debug');
  });

  it("filters each client's copy by its own level", () => {
    expect(admitsLevel(client('warning'), upstreamAt('debug'), log('info'))).toBe(false);
    expect(admitsLevel(client('warning'), upstreamAt('debug'), log('error'))).toBe(true);
    // Never set a level: everything while nobody changed the upstream, info and above once someone made it verbose.
    expect(admitsLevel(client(), upstreamAt(undefined), log('debug'))).toBe(true);
    expect(admitsLevel(client(), upstreamAt('debug'), log('debug'))).toBe(false);
    expect(admitsLevel(client(), upstreamAt('debug'), log('notice'))).toBe(true);
  });
});

describe('list changes', () => {
  it('knows the kind of a list_changed and whether that kind was listed', () => {
    expect(changedKind('notifications/tools/list_changed')).toBe('tools');
    expect(changedKind('notifications/resources/list_changed')).toBe('resources');
    expect(changedKind('notifications/message')).toBeUndefined();
    const holder = { listed: 0 };
    expect(hasListed(holder, 'tools')).toBe(false);
    markListed(holder, 'tools');
    expect([hasListed(holder, 'tools'), hasListed(holder, 'prompts')]).toEqual([true, false]);
  });
});

import { describe, expect, it } from 'vitest';
import { ApiKeyIndex, looksLikeJwt, parseSha256Ref, sha256Hex } from '../../src/identity/apikeys.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { agent, agentMap } from './helpers.js';

describe('AgentRegistry', () => {
  const plain = agent('plain', { credentials: { jwt: { sub: 'svc' }, apiKeys: [] } });
  const pinned = agent('pinned', { credentials: { jwt: { sub: 'svc', iss: 'https://b.test' }, apiKeys: [] } });
  const byAzp = agent('by-azp', { credentials: { jwt: { azp: 'spa' }, apiKeys: [] } });
  const both = agent('both', { credentials: { jwt: { client_id: 'cli', sub: 'robot' }, apiKeys: [] } });

  it('matches every declared claim, preferring the agent that also pins iss', () => {
    const r = new AgentRegistry(agentMap(plain, pinned, byAzp, both));
    expect(r.findByClaims({ sub: 'svc', iss: 'https://b.test' })?.agent.id).toBe('pinned');
    expect(r.findByClaims({ sub: 'svc', iss: 'https://a.test' })?.agent.id).toBe('plain');
    expect(r.findByClaims({ sub: 'u1', azp: 'spa' })).toMatchObject({ agent: { id: 'by-azp' }, matchedBy: 'azp' });
    expect(r.findByClaims({ sub: 'robot', client_id: 'cli' })?.agent.id).toBe('both');
    expect(r.findByClaims({ sub: 'someone-else', client_id: 'cli' })).toBeUndefined();
    expect(r.findByClaims({ sub: 'nobody' })).toBeUndefined();
  });

  it('reports credentials shared by two agents and keeps them with the first by id', () => {
    const key = `sha256:${sha256Hex('k')}`;
    const a = agent('a', { credentials: { jwt: { sub: 'same' }, apiKeys: [key] } });
    const b = agent('b', { credentials: { jwt: { sub: 'same' }, apiKeys: [key] } });
    const r = new AgentRegistry();
    const problems = r.update(agentMap(b, a));
    expect(problems.map((p) => p.agentId)).toEqual(['b', 'b']);
    expect(r.findByClaims({ sub: 'same' })?.agent.id).toBe('a');
    expect(r.findByApiKey('k')?.id).toBe('a');
  });

  it('looks agents up by id and by API key, and knows whether any key exists', () => {
    const r = new AgentRegistry(agentMap(plain));
    expect(r.get('plain')).toBe(plain);
    expect(r.hasApiKeys).toBe(false);
    r.update(agentMap(agent('k', { credentials: { apiKeys: [`sha256:${sha256Hex('secret').toUpperCase()}`] } })));
    expect(r.get('plain')).toBeUndefined();
    expect(r.hasApiKeys).toBe(true);
    expect(r.findByApiKey('secret')?.id).toBe('k');
    expect(r.findByApiKey('')).toBeUndefined();
  });
});

describe('API key helpers', () => {
  it('tells JWTs (even with an empty signature) from API keys', () => {
    expect(looksLikeJwt('aaa.bbb.ccc')).toBe(true);
    expect(looksLikeJwt('aaa.bbb.')).toBe(true);
    expect(looksLikeJwt('sk-live-123')).toBe(false);
    expect(looksLikeJwt('a.b')).toBe(false);
  });

  it('accepts only sha256:<64 hex> references', () => {
    expect(parseSha256Ref(`sha256:${'A'.repeat(64)}`)).toBe('a'.repeat(64));
    expect(parseSha256Ref('sha256:abc')).toBeUndefined();
    expect(parseSha256Ref('plain-key')).toBeUndefined();
    const index = new ApiKeyIndex<string>();
    expect(index.add('plain-key', 'x')).toBe(false);
    expect(index.size).toBe(0);
  });
});

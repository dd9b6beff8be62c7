// Admission estimates and model policy: input tokens counted with the tokenizer (special-token spellings as plain
// text, cached per text), output as asked and capped, and models.allow/deny intersected along a delegation chain.
import { beforeAll, describe, expect, it } from 'vitest';
import { countText, estimateInputTokens, loadTokenizer, requestedOutputTokens } from '../../src/upstream/models/estimate.js';
import { costOf } from '../../src/upstream/models/usage.js';
import { modelAccess } from '../../src/identity/model-policy.js';
import { agent } from '../limits/helpers.js';
import type { AgentManifest } from '../../src/config/types.js';
import type { Caller } from '../../src/gateway/types.js';

beforeAll(async () => {
  await loadTokenizer();
});

describe('estimates', () => {
  it('counts with the tokenizer, special-token spellings included as text', () => {
    expect(countText('What is the capital of France?')).toBe(7);
    expect(countText('a <|endoftext|> b')).toBeGreaterThan(3);
  });

  it('adds message framing, system and tools; output is max_tokens capped, times n', () => {
    const body = { messages: [{ role: 'user', content: 'What is the capital of France?' }] };
    expect(estimateInputTokens('chat', body)).toBe(3 + 4 + 7);
    expect(estimateInputTokens('messages', { ...body, system: 'Be brief.' })).toBe(3 + 4 + 7 + countText('Be brief.'));
    expect(estimateInputTokens('chat', { ...body, tools: [{ type: 'function' }] })).toBeGreaterThan(14);
    expect(requestedOutputTokens('chat', { max_tokens: 100 }, 8192)).toBe(100);
    expect(requestedOutputTokens('chat', { max_completion_tokens: 100_000 }, 8192)).toBe(8192);
    expect(requestedOutputTokens('chat', {}, 512)).toBe(512);
    expect(requestedOutputTokens('chat', { max_tokens: 10, n: 3 }, 8192)).toBe(30);
    expect(requestedOutputTokens('embeddings', { max_tokens: 10 }, 8192)).toBe(0);
    expect(estimateInputTokens('embeddings', { input: ['What is the capital of France?', 'x'] })).toBe(7 + 1);
  });

  it('costs cached input at its own price', () => {
    expect(costOf({ price: { input: 1, output: 2, cachedInput: 0.5 } }, { input: 10, output: 5, cachedInput: 4 })).toBeCloseTo((6 + 2 + 10) / 1e6, 15);
    expect(costOf({}, { input: 10, output: 5, cachedInput: 0 })).toBe(0);
  });
});

describe('model policy', () => {
  const withModels = (id: string, allow: string[], deny: string[] = []): AgentManifest => ({ ...agent(id), models: { allow, deny } });
  const live = (agents: AgentManifest[]) => ({ get: (id: string) => agents.find((a) => a.id === id) });

  it('allow globs minus deny; no allow means none', () => {
    const a = withModels('a', ['gpt-*'], ['gpt-4o']);
    const may = modelAccess({ agentId: 'a', principal: 'k', chain: ['a'], via: 'apikey' } as Caller, live([a]));
    expect(may('gpt-4o-mini')).toBe(true);
    expect(may('gpt-4o')).toBe(false);
    expect(may('claude-3')).toBe(false);
    expect(modelAccess({ agentId: 'b', principal: 'k', chain: ['b'], via: 'apikey' } as Caller, live([withModels('b', [])]))('gpt-4o')).toBe(false);
  });

  it('a delegated caller gets the intersection along its chain, narrowed by the scope', () => {
    const agents = live([withModels('root', ['gpt-*', 'claude-*']), withModels('child', ['*'])]);
    const child: Caller = { agentId: 'child', principal: 'j', chain: ['root', 'child'], via: 'delegated' };
    expect(modelAccess(child, agents)('claude-3')).toBe(true);
    expect(modelAccess(child, agents)('llama')).toBe(false);
    expect(modelAccess({ ...child, scope: ['gpt-*'] }, agents)('claude-3')).toBe(false);
    expect(modelAccess({ ...child, chain: ['gone', 'child'] }, agents)('gpt-4')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { reaches } from '../../src/gateway/access.js';
import { compilePolicy as compileAny, NOTHING, type CompiledPolicy } from '../../src/identity/policy.js';
import { globCoversPrefix, globReachesPrefix } from '../../src/util/glob.js';
import { agent } from './helpers.js';

// Every compiled policy answers server() (Access leaves it optional for other lists); typed so at this one place.
const compilePolicy = (...args: Parameters<typeof compileAny>) => compileAny(...args) as CompiledPolicy & { server(server: string): boolean };

describe('which servers a policy reaches (upstream sessions open only for these)', () => {
  it('matches globs against a name prefix', () => {
    expect(globReachesPrefix('fx__read_*', 'fx__')).toBe(true);
    expect(globReachesPrefix('f?__echo', 'fx__')).toBe(true);
    expect(globReachesPrefix('*__read', 'fx__')).toBe(true);
    expect(globReachesPrefix('fy__*', 'fx__')).toBe(false);
    expect(globReachesPrefix('fx', 'fx__')).toBe(false);
    expect(globCoversPrefix('fx__*', 'fx__')).toBe(true);
    expect(globCoversPrefix('*', 'fx__')).toBe(true);
    expect(globCoversPrefix('fx__?', 'fx__')).toBe(false);
    expect(globCoversPrefix('fx__a*', 'fx__')).toBe(false);
  });

  it('a server is reached when some tool, prompt or resource of it may be visible', () => {
    const one = compilePolicy(agent('a', { tools: { allow: ['fx__echo'], deny: [], rules: [] } }));
    expect(one.server('fx')).toBe(true);
    expect(one.server('fy')).toBe(false);
    const allBut = compilePolicy(agent('b', { tools: { allow: ['*'], deny: ['fy__*'], rules: [] } }));
    expect([allBut.server('fx'), allBut.server('fy')]).toEqual([true, false]);
    const partlyDenied = compilePolicy(agent('c', { tools: { allow: ['fy__*'], deny: ['fy__delete_*'], rules: [] } }));
    expect(partlyDenied.server('fy')).toBe(true);
    const promptsOnly = compilePolicy(agent('d', { tools: { allow: [], deny: [], rules: [] }, prompts: { allow: ['fz__*'], deny: [] } }));
    expect([promptsOnly.server('fz'), promptsOnly.server('fx')]).toEqual([true, false]);
    const resources = compilePolicy(agent('e', { tools: { allow: [], deny: [], rules: [] }, resources: { allow: ['file:///srv/*'], deny: [] } }));
    expect(resources.server('files')).toBe(true);
  });

  it('nothing allowed reaches nothing; a delegated scope narrows the servers; local mode reaches all', () => {
    const none = compilePolicy(agent('n', { tools: { allow: [], deny: [], rules: [] } }));
    expect(none.server('fx')).toBe(false);
    expect(reaches(NOTHING, 'fx')).toBe(false);
    const scoped = compilePolicy(agent('s', { tools: { allow: ['*'], deny: [], rules: [] } }), ['fx__read_*']);
    expect([scoped.server('fx'), scoped.server('fy')]).toEqual([true, false]);
    expect(compilePolicy(undefined).server('anything')).toBe(true);
  });
});

/** Effective rights of delegated callers and the scope rules for minting, in process. */
import { describe, expect, it } from 'vitest';
import { DelegatedPolicyResolver, globContains, globsOverlap, narrowScope } from '../../src/identity/delegation-policy.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import type { Caller } from '../../src/gateway/types.js';
import { agent, agentMap } from '../identity/helpers.js';

const root = agent('root', { tools: { allow: ['gh__*', 'db__query'], deny: ['gh__delete_*'], rules: [] } });
const child = agent('child', { tools: { allow: ['gh__*', 'db__*'], deny: [], rules: [{ tool: 'gh__issue', args: { repo: 'org/*' } }] } });

function delegated(chain: string[], scope?: string[]): Caller {
  return { agentId: chain[chain.length - 1]!, principal: chain.join('>'), chain, scope, via: 'delegated', depth: chain.length - 1 };
}

describe('glob relations', () => {
  it('overlap: some name matches both', () => {
    expect(globsOverlap('gh__*', '*__read')).toBe(true);
    expect(globsOverlap('gh__*', 'db__*')).toBe(false);
    expect(globsOverlap('gh__issue', 'gh__i?sue')).toBe(true);
    expect(globsOverlap('*', 'anything')).toBe(true);
  });
  it('containment: every name of the inner glob matches the outer one', () => {
    expect(globContains('gh__*', 'gh__issue_*')).toBe(true);
    expect(globContains('*', 'gh__*')).toBe(true);
    expect(globContains('gh__issue', 'gh__*')).toBe(false);
    expect(globContains('gh__*', 'gh__?')).toBe(true);
    expect(globContains('gh__?', 'gh__*')).toBe(false);
    expect(globContains('conf__test_?', 'conf__test_*')).toBe(false);
  });
});

describe('narrowScope', () => {
  it('accepts globs within the parent scope that each chain agent can use', () => {
    expect(narrowScope(['gh__issue'], undefined, [root, child])).toEqual({ ok: true, scope: ['gh__issue'] });
    expect(narrowScope(['gh__issue'], ['gh__*'], [root, child])).toEqual({ ok: true, scope: ['gh__issue'] });
  });
  it('inherits the parent scope when none is asked for', () => {
    expect(narrowScope(undefined, ['gh__*'], [root])).toEqual({ ok: true, scope: ['gh__*'] });
    expect(narrowScope(undefined, undefined, [root])).toEqual({ ok: true, scope: undefined });
  });
  it('refuses scopes too large to compare cheaply: an overlong glob, or too many globs', () => {
    expect(narrowScope([`gh__${'?'.repeat(300)}`], ['gh__*'], [root])).toMatchObject({ ok: false, message: expect.stringContaining('longer than 256') });
    const many = Array.from({ length: 65 }, (_, i) => `gh__t${i}`);
    expect(narrowScope(many, undefined, [root])).toMatchObject({ ok: false, message: expect.stringContaining('65 globs') });
    expect(narrowScope(many.slice(0, 64), undefined, [root])).toMatchObject({ ok: true });
  });

  it('refuses a glob outside the parent scope, one no chain agent allows, and one a deny covers whole', () => {
    expect(narrowScope(['gh__*'], ['gh__issue'], [root])).toMatchObject({ ok: false });
    expect(narrowScope(['slack__*'], undefined, [root, child])).toMatchObject({ ok: false });
    expect(narrowScope(['gh__delete_repo'], undefined, [root])).toMatchObject({ ok: false, message: expect.stringContaining('root') });
  });
});

describe('DelegatedPolicyResolver', () => {
  it('intersects the live policies of the chain and the scope; arg rules of any agent apply', () => {
    const registry = new AgentRegistry(agentMap(root, child));
    const policies = new DelegatedPolicyResolver(registry);
    const p = policies.forCaller(delegated(['root', 'child']));
    expect(p.canSeeTool('gh__issue')).toBe(true);
    expect(p.canSeeTool('gh__delete_repo')).toBe(false); // root denies
    expect(p.canSeeTool('db__query')).toBe(true);
    expect(p.canSeeTool('db__drop')).toBe(false); // root does not allow
    expect(p.checkToolCall('gh__issue', { repo: 'other/x' }).decision).toBe('deny');
    expect(p.checkToolCall('gh__issue', { repo: 'org/x' }).decision).toBe('allow');
    expect(policies.forCaller(delegated(['root', 'child'], ['db__*'])).canSeeTool('gh__issue')).toBe(false);
    expect(policies.access(delegated(['root', 'child'])).tool('db__query')).toBe(true);
  });

  it('follows reloads of any agent in the chain, and sees nothing once one is gone', () => {
    const registry = new AgentRegistry(agentMap(root, child));
    const policies = new DelegatedPolicyResolver(registry);
    const caller = delegated(['root', 'child']);
    expect(policies.forCaller(caller).canSeeTool('db__query')).toBe(true);
    registry.update(agentMap({ ...root, tools: { allow: ['gh__*'], deny: [], rules: [] } }, child));
    expect(policies.forCaller(caller).canSeeTool('db__query')).toBe(false);
    registry.update(agentMap(child));
    expect(policies.forCaller(caller).canSeeTool('gh__issue')).toBe(false);
  });

  it('lets a local-mode root (no local.yaml) pass everything down, and only in local mode', () => {
    const registry = new AgentRegistry(agentMap(child));
    const caller = delegated(['local', 'child']);
    expect(new DelegatedPolicyResolver(registry, { localMode: () => true }).forCaller(caller).canSeeTool('db__drop')).toBe(true);
    expect(new DelegatedPolicyResolver(registry, { localMode: () => false }).forCaller(caller).canSeeTool('db__drop')).toBe(false);
  });

  it('intersects the scope of every ancestor token on each call, not only the caller\'s own', () => {
    const all = agent('all', { tools: { allow: ['*'], deny: [], rules: [] } });
    const registry = new AgentRegistry(agentMap({ ...all, id: 'r' }, { ...all, id: 'c' }, { ...all, id: 'g' }));
    const tokens = new Map([
      ['t-c', { depth: 1, scope: ['gh__issue_?'], parentJti: undefined }],
      ['t-g', { depth: 2, scope: ['gh__*'], parentJti: 't-c' }],
    ]);
    const policies = new DelegatedPolicyResolver(registry, { tokenOf: (jti) => tokens.get(jti) });
    const grandchild: Caller = { ...delegated(['r', 'c', 'g'], ['gh__*']), jti: 't-g' };
    const p = policies.forCaller(grandchild);
    expect(p.canSeeTool('gh__issue_1')).toBe(true);
    expect(p.canSeeTool('gh__issue_12')).toBe(false);
    expect(p.checkToolCall('gh__delete_repo', {})).toEqual({ decision: 'hidden' });
    expect(p.canSeeResource('repo://x', 'gh')).toBe(false);
  });

  it('leaves callers that are not delegated to the plain policy', () => {
    const registry = new AgentRegistry(agentMap(root));
    const p = new DelegatedPolicyResolver(registry).forCaller({ agentId: 'root', principal: 'root', chain: ['root'], via: 'jwt', agent: root });
    expect(p.canSeeTool('db__query')).toBe(true);
  });
});

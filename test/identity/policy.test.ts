import { describe, expect, it } from 'vitest';
import type { ToolRule } from '../../src/config/types.js';
import type { Caller } from '../../src/gateway/types.js';
import { compilePolicy, PolicyResolver } from '../../src/identity/policy.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { agent, agentMap } from './helpers.js';

function withTools(allow: string[], deny: string[] = [], rules: ToolRule[] = []) {
  return agent('a', { tools: { allow, deny, rules } });
}

describe('compilePolicy: visibility', () => {
  it('allows by glob, deny wins, and no allow means nothing', () => {
    const p = compilePolicy(withTools(['bigquery__*', 'jira__search'], ['*__drop_*']));
    expect(p.canSeeTool('bigquery__query')).toBe(true);
    expect(p.canSeeTool('jira__search')).toBe(true);
    expect(p.canSeeTool('jira__create')).toBe(false);
    expect(p.canSeeTool('bigquery__drop_table')).toBe(false);
    const none = compilePolicy(withTools([], []));
    expect(none.canSeeTool('bigquery__query')).toBe(false);
    expect(none.checkToolCall('bigquery__query', {})).toEqual({ decision: 'hidden' });
  });

  it('allows everything for an undefined agent (local without local.yaml)', () => {
    const p = compilePolicy(undefined);
    expect(p.canSeeTool('x__y')).toBe(true);
    expect(p.canSeePrompt('x__p')).toBe(true);
    expect(p.canSeeResource('file:///etc/hosts', 'fs')).toBe(true);
    expect(p.checkToolCall('x__y', {})).toEqual({ decision: 'allow' });
  });

  it('derives prompts from the tool policy unless the agent has its own', () => {
    const derived = compilePolicy(withTools(['github__*'], ['github__secret_*']));
    expect(derived.canSeePrompt('github__review')).toBe(true);
    expect(derived.canSeePrompt('github__secret_prompt')).toBe(false);
    expect(derived.canSeePrompt('jira__triage')).toBe(false);
    const own = compilePolicy(agent('b', { tools: { allow: ['*'], deny: [], rules: [] }, prompts: { allow: ['jira__*'], deny: [] } }));
    expect(own.canSeePrompt('jira__triage')).toBe(true);
    expect(own.canSeePrompt('github__review')).toBe(false);
  });

  it('derives resources from whole-server grants unless the agent has a resources policy', () => {
    const derived = compilePolicy(withTools(['github__*', 'jira__search']));
    expect(derived.canSeeResource('repo://x/readme', 'github')).toBe(true);
    expect(derived.canSeeResource('jira://ISSUE-1', 'jira')).toBe(false); // only one jira tool granted, not the server
    expect(derived.canSeeResource('repo://x/readme')).toBe(false); // server unknown: cannot derive
    expect(compilePolicy(withTools(['*'], ['github__*'])).canSeeResource('repo://x', 'github')).toBe(false);
    const own = compilePolicy(agent('c', { resources: { allow: ['file:///srv/*'], deny: ['file:///srv/secret*'] } }));
    expect(own.canSeeResource('file:///srv/a.txt', 'fs')).toBe(true);
    expect(own.canSeeResource('file:///srv/secret.txt', 'fs')).toBe(false);
    expect(own.canSeeResource('file:///etc/passwd', 'fs')).toBe(false);
  });

  it('serves the catalog Access view from the same decisions', () => {
    const p = compilePolicy(withTools(['github__*']));
    expect(p.tool('github__search')).toBe(true);
    expect(p.prompt('jira__x')).toBe(false);
    expect(p.resource('github', 'repo://r')).toBe(true);
  });
});

describe('compilePolicy: resources without a resources policy', () => {
  it('are visible when an allow glob covers every tool of the server and no deny glob does', () => {
    expect(compilePolicy(withTools(['git*'])).canSeeResource('repo://r', 'github')).toBe(true);
    expect(compilePolicy(withTools(['github__?'])).canSeeResource('repo://r', 'github')).toBe(false);
    expect(compilePolicy(withTools(['github__?*'])).canSeeResource('repo://r', 'github')).toBe(false);
    expect(compilePolicy(withTools(['*'], ['github__*'])).canSeeResource('repo://r', 'github')).toBe(false);
    expect(compilePolicy(withTools(['*'], ['github__drop_*'])).canSeeResource('repo://r', 'github')).toBe(true);
    expect(compilePolicy(withTools(['*']), ['github__?']).canSeeResource('repo://r', 'github')).toBe(false);
    expect(compilePolicy(withTools(['*']), ['git*']).canSeeResource('repo://r', 'github')).toBe(true);
  });
});

describe('compilePolicy: calls', () => {
  const rules: ToolRule[] = [
    { tool: 'bigquery__delete_rows', args: { table: 'tmp_*', dryRun: 'true' } },
    { tool: 'bigquery__delete_*', args: { table: 'tmp_?' } }, // every args rule whose tool glob matches must hold
    { tool: '*__delete_*', approval: 'human' },
  ];
  const p = compilePolicy(withTools(['bigquery__*'], [], rules));

  it('allows when every named argument matches its glob, numbers and booleans stringified', () => {
    expect(p.checkToolCall('bigquery__query', { sql: 'select 1' })).toEqual({ decision: 'allow' });
    expect(p.checkToolCall('bigquery__delete_rows', { table: 'tmp_x', dryRun: true })).toMatchObject({ decision: 'approval' });
  });

  it('refuses with policy_denied when an argument does not match, is missing, or is not a scalar', () => {
    for (const args of [{ table: 'prod', dryRun: true }, { dryRun: true }, { table: ['tmp_x'], dryRun: true }, undefined]) {
      const d = p.checkToolCall('bigquery__delete_rows', args);
      expect(d.decision).toBe('deny');
      if (d.decision === 'deny') {
        expect(d.refusal.reason).toBe('policy_denied');
        expect(d.refusal.asUnknown).toBeUndefined();
        expect(d.refusal.message).toMatch(/must match "tmp_\*"/);
      }
    }
  });

  it('refuses when a later matching rule fails although an earlier one holds', () => {
    const d = p.checkToolCall('bigquery__delete_rows', { table: 'tmp_xy', dryRun: true });
    expect(d).toMatchObject({ decision: 'deny', refusal: { reason: 'policy_denied', data: { argument: 'table' } } });
    if (d.decision === 'deny') expect(d.refusal.message).toMatch(/must match "tmp_\?"/);
  });

  it('asks for approval under an approval rule, naming the rule, after earlier rules matched', () => {
    expect(p.checkToolCall('bigquery__delete_dataset', { table: 'tmp_1' })).toEqual({ decision: 'approval', rule: rules[2] });
    expect(p.checkToolCall('bigquery__delete_rows', { table: 'tmp_1', dryRun: true })).toEqual({ decision: 'approval', rule: rules[2] });
    expect(p.checkToolCall('bigquery__delete_dataset', { table: 'never' }).decision).toBe('deny');
  });

  it('hides names the agent may not see before looking at arguments', () => {
    expect(p.checkToolCall('jira__delete_issue', {})).toEqual({ decision: 'hidden' });
  });
});

describe('compilePolicy: delegated scope and caching', () => {
  const parent = agent('p', {
    tools: { allow: ['github__*', 'jira__*'], deny: [], rules: [] },
  });

  it('intersects visibility with the scope globs', () => {
    const scoped = compilePolicy(parent, ['github__search', 'jira__*', 'slack__*']);
    expect(scoped.canSeeTool('github__search')).toBe(true);
    expect(scoped.canSeeTool('github__create_issue')).toBe(false);
    expect(scoped.canSeeTool('slack__post')).toBe(false); // in scope, but not in the agent's own policy
    expect(scoped.canSeePrompt('jira__triage')).toBe(true);
    expect(scoped.canSeePrompt('github__review')).toBe(false);
    expect(scoped.canSeeResource('jira://1', 'jira')).toBe(true);
    expect(scoped.canSeeResource('repo://r', 'github')).toBe(false);
  });

  it('compiles once per manifest object and scope; a reloaded manifest compiles anew', () => {
    expect(compilePolicy(parent)).toBe(compilePolicy(parent));
    expect(compilePolicy(parent, ['a*'])).toBe(compilePolicy(parent, ['a*']));
    expect(compilePolicy(parent, ['a*'])).not.toBe(compilePolicy(parent));
    expect(compilePolicy({ ...parent })).not.toBe(compilePolicy(parent));
  });
});

describe('PolicyResolver', () => {
  const caller = (c: Partial<Caller>): Caller => ({ agentId: 'a', principal: 'a', chain: ['a'], via: 'jwt', ...c });

  it('uses the live manifest, so a reload applies to open sessions', () => {
    const v1 = withTools(['x__*']);
    const registry = new AgentRegistry(agentMap(v1));
    const policies = new PolicyResolver(registry);
    const c = caller({ agent: v1 });
    expect(policies.forCaller(c).canSeeTool('x__t')).toBe(true);
    registry.update(agentMap(withTools(['y__*'])));
    expect(policies.forCaller(c).canSeeTool('x__t')).toBe(false);
    expect(policies.forCaller(c).canSeeTool('y__t')).toBe(true);
    registry.update(agentMap());
    expect(policies.forCaller(c).canSeeTool('y__t')).toBe(false); // agent removed: sees nothing
    expect(policies.access(c).tool('y__t')).toBe(false);
  });

  it('allows everything only to `local` without a manifest, narrowed by scope', () => {
    const policies = new PolicyResolver(new AgentRegistry());
    expect(policies.forCaller(caller({ agentId: 'local', via: 'local' })).canSeeTool('any__thing')).toBe(true);
    expect(policies.forCaller(caller({ agentId: 'local', via: 'local', scope: ['fs__*'] })).canSeeTool('any__thing')).toBe(false);
    expect(policies.forCaller(caller({ agentId: 'ghost', via: 'apikey' })).canSeeTool('any__thing')).toBe(false);
  });

  it("falls back to the caller's own manifest without a registry", () => {
    const policies = new PolicyResolver();
    expect(policies.forCaller(caller({ agent: withTools(['z__*']) })).canSeeTool('z__1')).toBe(true);
  });
});

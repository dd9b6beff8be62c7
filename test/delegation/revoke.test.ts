/** Revocation, workflow control and the workflow tree for delegated tokens, against a real gateway. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, waitFor } from '../helpers/gateway.js';
import { adminGet, adminPost, claimsOf, clientFor, delegate, exchange, initializeStatus, startDelegationWorld, toolNames, type DelegationWorld } from './setup.js';

let world: DelegationWorld;
beforeAll(async () => {
  world = await startDelegationWorld();
}, 60_000);
afterAll(() => stopAll());

interface TreeStep {
  step: number;
  parentStep: number | null;
  agent: string;
  kind: string;
  tool: string;
  outcome: string;
  reason: string | null;
  children?: TreeStep[];
}

describe('revocation and workflows of delegated tokens', () => {
  it('revoking a token revokes everything minted from it, and only that', async () => {
    const { gw } = world;
    const rootToken = await world.rootToken();
    const childToken = await delegate(gw, rootToken, 'child');
    const grandToken = await delegate(gw, childToken, 'grandchild');
    const grand = await clientFor(gw, grandToken, 'grandchild');
    expect(await toolNames(grand)).toContain('alpha__echo');

    const jti = claimsOf(childToken).jti as string;
    const revoked = await adminPost(gw, `/tokens/${jti}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toEqual([jti, claimsOf(grandToken).jti]);

    expect(await initializeStatus(gw, childToken)).toBe(401);
    expect(await initializeStatus(gw, grandToken)).toBe(401);
    // The open session is refused on its next request too.
    await expect(grand.listTools()).rejects.toThrow();
    expect(await initializeStatus(gw, rootToken)).toBe(200);
    // A revoked parent cannot mint.
    expect((await exchange(gw, childToken, 'grandchild')).body.error).toBe('invalid_grant');
    // A revoked child no longer counts against the parent's maxChildren (2).
    await delegate(gw, rootToken, 'child');
    await delegate(gw, rootToken, 'child');

    expect((await adminPost(gw, '/tokens/no-such-jti/revoke')).status).toBe(404);
  });

  it('shows the children steps under the step that delegated, in the same workflow', async () => {
    const { gw } = world;
    const rootToken = await world.rootToken();
    const root = await clientFor(gw, rootToken, 'root');
    await root.callTool({ name: 'alpha__echo', arguments: { text: 'root' } });
    // Delegating from inside the root's session joins its workflow.
    const childToken = await delegate(gw, rootToken, 'child');
    const wf = claimsOf(childToken).wf as string;
    const child = await clientFor(gw, childToken, 'child');
    await child.callTool({ name: 'alpha__echo', arguments: { text: 'child' } });
    const grandToken = await delegate(gw, childToken, 'grandchild', { scope: 'alpha__echo' });
    const grand = await clientFor(gw, grandToken, 'grandchild');
    await grand.callTool({ name: 'alpha__echo', arguments: { text: 'grand' } });

    const tree = await waitFor(async () => {
      const t = await adminGet(gw, `/workflows/${wf}`);
      return (t.body.steps as TreeStep[] | undefined)?.length === 5 ? t.body : undefined;
    }, { what: 'five steps in the workflow' });
    expect(tree.agent).toBe('root');
    const roots = tree.tree as TreeStep[];
    expect(roots.map((s) => [s.agent, s.kind])).toEqual([
      ['root', 'tools/call'],
      ['root', 'delegation'],
    ]);
    const delegation = roots[1]!;
    expect(delegation).toMatchObject({ tool: 'child', outcome: 'ok' });
    expect(delegation.children!.map((s) => [s.agent, s.kind, s.tool])).toEqual([
      ['child', 'tools/call', 'echo'],
      ['child', 'delegation', 'grandchild'],
    ]);
    expect(delegation.children![1]!.children!.map((s) => [s.agent, s.tool])).toEqual([['grandchild', 'echo']]);
  });

  it('pausing or killing the workflow stops every token minted in it', async () => {
    const { gw } = world;
    const rootToken = await world.rootToken();
    const childToken = await delegate(gw, rootToken, 'child');
    const wf = claimsOf(childToken).wf as string;
    const child = await clientFor(gw, childToken, 'child');
    expect((await child.callTool({ name: 'alpha__echo', arguments: { text: 'a' } })).isError).toBeFalsy();

    expect((await adminPost(gw, `/workflows/${wf}/pause`)).status).toBe(200);
    await expect(child.callTool({ name: 'alpha__echo', arguments: { text: 'b' } })).rejects.toThrow(/paused/);
    const paused = await exchange(gw, childToken, 'grandchild');
    expect(paused.body).toMatchObject({ error: 'invalid_grant' });
    expect(paused.body.error_description).toMatch(/paused/);

    expect((await adminPost(gw, `/workflows/${wf}/resume`)).status).toBe(200);
    expect((await child.callTool({ name: 'alpha__echo', arguments: { text: 'c' } })).isError).toBeFalsy();

    expect((await adminPost(gw, `/workflows/${wf}/kill`)).status).toBe(200);
    const fresh = await clientFor(gw, childToken, 'child-after-kill');
    await expect(fresh.callTool({ name: 'alpha__echo', arguments: { text: 'd' } })).rejects.toThrow(/killed/);
  });

  it('a budget slice caps the child and everything it delegates to', async () => {
    const { gw } = world;
    const childToken = await delegate(gw, await world.rootToken(), 'child', { budget: '2' });
    expect(claimsOf(childToken).budget).toBe(2);
    expect((await exchange(gw, childToken, 'grandchild', { budget: '3' })).body.error).toBe('invalid_request');
    const grandToken = await delegate(gw, childToken, 'grandchild');
    const child = await clientFor(gw, childToken, 'child');
    const grand = await clientFor(gw, grandToken, 'grandchild');
    await child.callTool({ name: 'alpha__echo', arguments: { text: '1' } });
    await grand.callTool({ name: 'alpha__echo', arguments: { text: '2' } });
    await expect(child.callTool({ name: 'alpha__echo', arguments: { text: '3' } })).rejects.toThrow(/budget/);
    await expect(grand.callTool({ name: 'alpha__echo', arguments: { text: '4' } })).rejects.toThrow(/budget/);
  });

  it('publishes the signing key at /.well-known/jwks.json, and keys rotate picks a new kid that the running gateway uses', async () => {
    const { gw } = world;
    const jwks = (await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    const before = await delegate(gw, await world.rootToken(), 'child');

    const { execFileSync } = await import('node:child_process');
    const { CLI } = await import('../helpers/gateway.js');
    const out = execFileSync(process.execPath, [CLI, 'keys', 'rotate', '--data', join(gw.dir, 'data')], { encoding: 'utf8' });
    expect(out).toMatch(/new signing key/);

    const after = await delegate(gw, await world.rootToken(), 'child');
    const kidOf = (t: string) => (JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    expect(kidOf(after)).not.toBe(kidOf(before));
    const rotated = (await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(rotated.keys.map((k) => k.kid).sort()).toEqual([kidOf(before), kidOf(after)].sort());
    // Tokens from the old key keep working until they expire.
    expect(await initializeStatus(gw, before)).toBe(200);
    expect(await initializeStatus(gw, after)).toBe(200);
    expect(readFileSync(join(gw.dir, 'data', 'keys', `${kidOf(after)}.json`), 'utf8')).toContain('"privateJwk"');
  });
});

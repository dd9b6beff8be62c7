/** Three-level delegation against a real gateway: each level sees exactly the intersection; escalations are refused. */
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll, waitFor } from '../helpers/gateway.js';
import {
  AGENTS,
  adminGet,
  claimsOf,
  clientFor,
  delegate,
  exchange,
  initializeStatus,
  startDelegationWorld,
  toolNames,
  type DelegationWorld,
} from './setup.js';

let world: DelegationWorld;
beforeAll(async () => {
  world = await startDelegationWorld();
}, 60_000);
afterAll(() => stopAll());

describe('delegation chain root → child → grandchild', () => {
  it('mints tokens naming the child, the act chain, the workflow and depth, and each level sees exactly the intersection', async () => {
    const { gw } = world;
    const rootToken = await world.rootToken();
    const root = await clientFor(gw, rootToken, 'root');
    const rootTools = await toolNames(root);
    expect(rootTools).toContain('alpha__echo');
    expect(rootTools).toContain('beta__add');

    const answer = await exchange(gw, rootToken, 'child');
    expect(answer.status).toBe(200);
    expect(answer.cacheControl).toBe('no-store');
    expect(answer.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer' });
    const childToken = answer.body.access_token as string;
    const childClaims = claimsOf(childToken);
    expect(childClaims).toMatchObject({ iss: gw.url, aud: gw.url, sub: 'child', act: { sub: 'root' }, depth: 1, usr: 'root-owner@example.com' });
    expect(typeof childClaims.wf).toBe('string');
    expect(typeof childClaims.jti).toBe('string');
    expect(childClaims.exp as number).toBeLessThanOrEqual(claimsOf(rootToken).exp as number);
    expect(answer.body.expires_in as number).toBeGreaterThan(0);

    const child = await clientFor(gw, childToken, 'child');
    expect(await toolNames(child)).toEqual(rootTools.filter((t) => t.startsWith('alpha__') || t === 'beta__echo'));

    const grandToken = await delegate(gw, childToken, 'grandchild', { scope: 'alpha__echo beta__*' });
    expect(claimsOf(grandToken)).toMatchObject({ sub: 'grandchild', act: { sub: 'child', act: { sub: 'root' } }, depth: 2, scope: 'alpha__echo beta__*', wf: childClaims.wf });
    const grand = await clientFor(gw, grandToken, 'grandchild');
    // grandchild allows '*', but root ∩ child ∩ scope leaves only these two.
    expect(await toolNames(grand)).toEqual(['alpha__echo', 'beta__echo']);

    await expect(grand.callTool({ name: 'beta__add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/Unknown tool: beta__add/);
    const ok = await grand.callTool({ name: 'alpha__echo', arguments: { text: 'hi' } });
    expect(ok.isError).toBeFalsy();
  });

  it('refuses an audience the parent may not delegate to, a scope the parent lacks, and exceeding depth', async () => {
    const { gw } = world;
    const rootToken = await world.rootToken();
    const outsider = await exchange(gw, rootToken, 'outsider');
    expect(outsider.status).toBe(400);
    expect(outsider.body).toMatchObject({ error: 'invalid_target' });
    expect(outsider.body.error_description).toMatch(/delegation\.agents/);
    expect((await exchange(gw, rootToken, 'grandchild')).body.error).toBe('invalid_target');
    expect((await exchange(gw, rootToken, 'nobody')).body.error).toBe('invalid_target');

    // No agent in the chain has gamma__*; beta__add is not the child's.
    expect((await exchange(gw, rootToken, 'child', { scope: 'gamma__*' })).body.error).toBe('invalid_scope');
    const narrow = await delegate(gw, rootToken, 'child', { scope: 'alpha__echo' });
    const wider = await exchange(gw, narrow, 'grandchild', { scope: 'alpha__*' });
    expect(wider.status).toBe(400);
    expect(wider.body).toMatchObject({ error: 'invalid_scope' });

    // root allows 2 hops, child 1: a grandchild (depth 2) may not delegate further.
    const grand = await delegate(gw, narrow, 'grandchild');
    expect(claimsOf(grand).scope).toBe('alpha__echo');
    const deeper = await exchange(gw, grand, 'grandchild');
    expect(deeper.body.error).toBe('invalid_target');
    expect(deeper.body.error_description).toMatch(/depth 3/);

    // Each refusal is a step with reason delegation_denied in the parent's workflow.
    const audit = await adminGet(gw, '/audit?agent=root');
    const reasons = (audit.body.records as Array<{ reason: string | null; tool: string }>).filter((r) => r.reason === 'delegation_denied').map((r) => r.tool);
    expect(reasons).toEqual(expect.arrayContaining(['outsider', 'grandchild', 'nobody', 'child']));
  });

  it('reads ? in a parent scope as one character: a grandchild cannot widen it to *, and inherits it as it is', async () => {
    const { gw } = world;
    const childToken = await delegate(gw, await world.rootToken(), 'child', { scope: 'alpha__ad?' });
    for (const scope of ['alpha__ad*', 'alpha__*', 'alpha__a?d', '*']) {
      const wider = await exchange(gw, childToken, 'grandchild', { scope });
      expect(wider.status, scope).toBe(400);
      expect(wider.body, scope).toMatchObject({ error: 'invalid_scope' });
    }
    expect(claimsOf(await delegate(gw, childToken, 'grandchild', { scope: 'alpha__add' })).scope).toBe('alpha__add');
    const inherited = await delegate(gw, childToken, 'grandchild');
    expect(claimsOf(inherited).scope).toBe('alpha__ad?');
    const grand = await clientFor(gw, inherited, 'grandchild');
    expect(await toolNames(grand)).toEqual(['alpha__add']);
    expect(await grand.callTool({ name: 'alpha__add', arguments: { a: 2, b: 3 } })).toMatchObject({ content: [{ text: '5' }] });
    await expect(grand.callTool({ name: 'alpha__echo', arguments: { text: 'x' } })).rejects.toThrow(/Unknown tool/);
  });

  it('refuses more live children than maxChildren per node', async () => {
    const { gw } = world;
    const rootToken = await world.rootToken();
    await delegate(gw, rootToken, 'child');
    await delegate(gw, rootToken, 'child');
    const third = await exchange(gw, rootToken, 'child');
    expect(third.body).toMatchObject({ error: 'invalid_target' });
    expect(third.body.error_description).toMatch(/at most 2/);
    // Another root token is another node.
    await delegate(gw, await world.rootToken(), 'child');
  });

  it('refuses an expired parent, an altered minted token and one signed by a key the gateway does not have', async () => {
    const { gw } = world;
    const expired = await world.rootToken('root', -120);
    const fromExpired = await exchange(gw, expired, 'child');
    expect(fromExpired.body.error).toBe('invalid_grant');

    const childToken = await delegate(gw, await world.rootToken(), 'child', { scope: 'alpha__echo' });
    const [h, p, s] = childToken.split('.');
    const widened = { ...claimsOf(childToken), scope: '*', sub: 'outsider' };
    const altered = `${h}.${Buffer.from(JSON.stringify(widened)).toString('base64url')}.${s}`;
    expect(p).not.toBe(altered.split('.')[1]);
    expect(await initializeStatus(gw, altered)).toBe(401);
    expect((await exchange(gw, altered, 'grandchild')).body.error).toBe('invalid_grant');

    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ ...claimsOf(childToken), jti: 'forged' })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'not-a-gateway-key' })
      .sign(privateKey);
    expect(await initializeStatus(gw, forged)).toBe(401);
    expect(await initializeStatus(gw, childToken)).toBe(200);
  });

  it('a parent policy change takes effect on an existing child token and session', async () => {
    const { gw } = world;
    const childToken = await delegate(gw, await world.rootToken(), 'child');
    const child = await clientFor(gw, childToken, 'child-live');
    expect(await toolNames(child)).toContain('beta__echo');

    world.writeAgent('root', { ...AGENTS.root, tools: { allow: ['alpha__*'] } });
    try {
      await waitFor(async () => !(await toolNames(child)).includes('beta__echo'), { timeoutMs: 8000, what: 'root policy reload reaching the child' });
      await expect(child.callTool({ name: 'beta__echo', arguments: { text: 'x' } })).rejects.toThrow(/Unknown tool: beta__echo/);
      // A fresh connection with the same token sees the shrunken rights too.
      const again = await clientFor(gw, childToken, 'child-again');
      expect((await toolNames(again)).every((t) => t.startsWith('alpha__'))).toBe(true);
    } finally {
      world.writeAgent('root', AGENTS.root);
      await waitFor(async () => (await toolNames(child)).includes('beta__echo'), { timeoutMs: 8000, what: 'root policy restored' });
    }
  });

  it('a lowered limit of a delegated agent reaches its open session', async () => {
    const { gw } = world;
    const childToken = await delegate(gw, await world.rootToken(), 'child');
    const child = await clientFor(gw, childToken, 'child-limits');
    expect(await child.callTool({ name: 'alpha__echo', arguments: { text: 'before' } })).toMatchObject({ content: [{ text: 'before' }] });

    // Dropping beta__echo marks the reload, so it can be seen without spending a call.
    world.writeAgent('child', { ...AGENTS.child, tools: { allow: ['alpha__*'] }, limits: { perMinute: { toolCalls: 1 } } });
    try {
      await waitFor(async () => !(await toolNames(child)).includes('beta__echo'), { timeoutMs: 8000, what: 'child manifest reload' });
      const refused = child.callTool({ name: 'alpha__echo', arguments: { text: 'after' } });
      await expect(refused).rejects.toMatchObject({ code: -32030, data: { reason: 'rate_limited', limit: 'perMinute.toolCalls', max: 1 } });
    } finally {
      world.writeAgent('child', AGENTS.child);
      await waitFor(async () => (await toolNames(child)).includes('beta__echo'), { timeoutMs: 8000, what: 'child manifest restored' });
    }
  });
});

import { describe, expect, it } from 'vitest';
import { DelegationLimits } from '../../src/limits/delegation.js';
import { FakeClock } from './helpers.js';

describe('DelegationLimits', () => {
  it('refuses a child deeper than maxDepth', () => {
    const d = new DelegationLimits();
    expect(d.checkDepth(2, 2)).toBeUndefined();
    const refusal = d.checkDepth(3, 2);
    expect(refusal?.reason).toBe('delegation_denied');
    expect(refusal?.data).toMatchObject({ limit: 'delegation.maxDepth', max: 2 });
    expect(d.checkDepth(1, 0)?.data).toMatchObject({ limit: 'delegation.maxDepth', max: 0 });
  });

  it('reserves live children per node up to maxChildren and frees a slot when one is removed', async () => {
    const d = new DelegationLimits();
    expect(await d.reserveChild('wf/root', 'wf/c1', Number.POSITIVE_INFINITY, 2)).toBeUndefined();
    expect(await d.reserveChild('wf/root', 'wf/c2', Number.POSITIVE_INFINITY, 2)).toBeUndefined();
    expect(await d.reserveChild('wf/root', 'wf/c2', Number.POSITIVE_INFINITY, 2)).toBeUndefined(); // the same child twice is still one
    expect(await d.reserveChild('wf/other', 'wf/c3', Number.POSITIVE_INFINITY, 2)).toBeUndefined();
    expect(await d.liveChildren('wf/root')).toBe(2);
    const refusal = await d.reserveChild('wf/root', 'wf/c4', Number.POSITIVE_INFINITY, 2);
    expect(refusal?.data).toMatchObject({ limit: 'delegation.maxChildren', used: 2, max: 2 });
    expect(refusal?.message).toMatch(/wait for one to finish/);
    expect(await d.liveChildren('wf/root')).toBe(2); // a refused reservation records nothing
    await d.removeChild('wf/root', 'wf/c1');
    expect(await d.reserveChild('wf/root', 'wf/c4', Number.POSITIVE_INFINITY, 2)).toBeUndefined();
  });

  it('addChild counts a child without a check (tokens minted before a restart)', async () => {
    const d = new DelegationLimits();
    for (const c of ['c1', 'c2', 'c3']) await d.addChild('p', c);
    expect(await d.liveChildren('p')).toBe(3);
    expect((await d.reserveChild('p', 'c4', Number.POSITIVE_INFINITY, 2))?.data).toMatchObject({ used: 3, max: 2 });
  });

  it('lets children lapse when their token expires', async () => {
    const clock = new FakeClock();
    const d = new DelegationLimits({ now: clock.now });
    await d.addChild('p', 'c1', clock.t + 1_000);
    expect(await d.reserveChild('p', 'c2', clock.t + 5_000, 1)).toBeDefined();
    clock.advance(1_000);
    expect(await d.reserveChild('p', 'c2', clock.t + 5_000, 1)).toBeUndefined();
  });

  it('removeNode forgets all of a node’s children', async () => {
    const d = new DelegationLimits();
    await d.addChild('p', 'c1');
    await d.removeNode('p');
    expect(await d.liveChildren('p')).toBe(0);
  });
});

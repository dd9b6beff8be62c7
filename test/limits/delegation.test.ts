import { describe, expect, it } from 'vitest';
import { DelegationLimits } from '../../src/limits/delegation.js';
import { FakeClock } from './helpers.js';

describe('DelegationLimits', () => {
  it('refuses a child deeper than maxDepth', () => {
    const d = new DelegationLimits();
    expect(d.canDelegate('wf/root', 2, 2, 8)).toBeUndefined();
    const refusal = d.canDelegate('wf/root', 3, 2, 8);
    expect(refusal?.reason).toBe('delegation_denied');
    expect(refusal?.data).toMatchObject({ limit: 'delegation.maxDepth', max: 2 });
    expect(d.canDelegate('wf/root', 1, 0, 8)?.data).toMatchObject({ limit: 'delegation.maxDepth', max: 0 });
  });

  it('counts live children per node and frees a slot when one is removed', () => {
    const d = new DelegationLimits();
    d.addChild('wf/root', 'wf/c1');
    d.addChild('wf/root', 'wf/c2');
    d.addChild('wf/root', 'wf/c2'); // the same child twice is still one
    d.addChild('wf/other', 'wf/c3');
    expect(d.liveChildren('wf/root')).toBe(2);
    const refusal = d.canDelegate('wf/root', 1, 3, 2);
    expect(refusal?.data).toMatchObject({ limit: 'delegation.maxChildren', used: 2, max: 2 });
    expect(refusal?.message).toMatch(/wait for one to finish/);
    d.removeChild('wf/root', 'wf/c1');
    expect(d.canDelegate('wf/root', 1, 3, 2)).toBeUndefined();
  });

  it('lets children lapse when their token expires', () => {
    const clock = new FakeClock();
    const d = new DelegationLimits({ now: clock.now });
    d.addChild('p', 'c1', clock.t + 1_000);
    expect(d.canDelegate('p', 1, 1, 1)).toBeDefined();
    clock.advance(1_000);
    expect(d.canDelegate('p', 1, 1, 1)).toBeUndefined();
  });

  it('removeNode forgets all of a node’s children', () => {
    const d = new DelegationLimits();
    d.addChild('p', 'c1');
    d.removeNode('p');
    expect(d.liveChildren('p')).toBe(0);
  });
});

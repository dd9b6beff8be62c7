// The serving process turns V8's allocation-site pretenuring off (decision 0047) unless its command line or
// NODE_OPTIONS already chose either way.
import { describe, expect, it } from 'vitest';
import { tuneHeapForServing } from '../../src/util/heap-tuning.js';

describe('tuneHeapForServing', () => {
  it('turns pretenuring off when nothing chose', () => {
    expect(tuneHeapForServing([], '')).toBe(true);
    expect(tuneHeapForServing(['--enable-source-maps'], '--max-old-space-size=4096')).toBe(true);
  });

  it('leaves an explicit choice on the command line or in NODE_OPTIONS alone', () => {
    expect(tuneHeapForServing(['--allocation-site-pretenuring'], '')).toBe(false);
    expect(tuneHeapForServing([], '--max-old-space-size=4096 --allocation-site-pretenuring')).toBe(false);
    expect(tuneHeapForServing([], '--no-allocation-site-pretenuring')).toBe(false);
  });
});

// The serving process turns V8's allocation-site pretenuring off (decision 0047) unless its command line already
// chose either way (Node refuses the flag in NODE_OPTIONS, so the command line is the only place to choose).
import { describe, expect, it } from 'vitest';
import { tuneHeapForServing } from '../../src/util/heap-tuning.js';

describe('tuneHeapForServing', () => {
  it('turns pretenuring off when nothing chose', () => {
    expect(tuneHeapForServing([])).toBe(true);
    expect(tuneHeapForServing(['--enable-source-maps', '--max-old-space-size=4096'])).toBe(true);
  });

  it('leaves an explicit choice on the command line alone', () => {
    expect(tuneHeapForServing(['--allocation-site-pretenuring'])).toBe(false);
    expect(tuneHeapForServing(['--no-allocation-site-pretenuring'])).toBe(false);
  });
});

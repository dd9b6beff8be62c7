import { describe, expect, it } from 'vitest';
import { LazyAbort } from '../../src/gateway/cancel.js';

describe('LazyAbort', () => {
  it('tells its listeners once, with the reason, and a removed listener not at all', () => {
    const c = new LazyAbort();
    const heard: string[] = [];
    c.onAbort(() => heard.push(`a:${String(c.reason)}`));
    const off = c.onAbort(() => heard.push('b'));
    off();
    c.abort('cancelled by client');
    c.abort('again');
    expect(heard).toEqual(['a:cancelled by client']);
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe('cancelled by client');
  });

  it('makes a real signal on demand that follows the abort, before or after it was asked for', () => {
    const early = new LazyAbort();
    const signal = early.signal;
    expect(signal.aborted).toBe(false);
    let fired = 0;
    signal.addEventListener('abort', () => fired++);
    early.abort('stop');
    expect([signal.aborted, signal.reason, fired]).toEqual([true, 'stop', 1]);

    const late = new LazyAbort();
    late.abort('gone');
    expect([late.signal.aborted, late.signal.reason]).toEqual([true, 'gone']);
    expect(late.signal).toBe(late.signal);
  });
});

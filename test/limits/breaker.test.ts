import { describe, expect, it } from 'vitest';
import { BreakerBoard, CircuitBreaker, type BreakerState } from '../../src/limits/breaker.js';
import { backoffMs, shouldRetry, sleep } from '../../src/limits/retry.js';
import { FakeClock } from './helpers.js';

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures, fails fast, half-opens for one probe, and closes on its success', () => {
    const clock = new FakeClock();
    const changes: BreakerState[] = [];
    const b = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 10_000, now: clock.now, onStateChange: (s) => changes.push(s) });
    b.onFailure();
    b.onFailure();
    b.onSuccess(); // a success resets the consecutive count
    b.onFailure();
    b.onFailure();
    expect(b.state).toBe('closed');
    expect(b.canPass()).toBe(true);
    b.onFailure();
    expect(b.state).toBe('open');
    expect(b.canPass()).toBe(false);
    expect(b.retryAfterMs()).toBe(10_000);

    clock.advance(9_999);
    expect(b.canPass()).toBe(false);
    clock.advance(1);
    expect(b.state).toBe('half-open');
    expect(b.canPass()).toBe(true); // the probe
    expect(b.canPass()).toBe(false); // only one at a time
    b.onSuccess();
    expect(b.state).toBe('closed');
    expect(b.canPass()).toBe(true);
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('re-opens when the probe fails', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1_000, now: clock.now });
    b.onFailure();
    clock.advance(1_000);
    expect(b.canPass()).toBe(true);
    b.onFailure();
    expect(b.state).toBe('open');
    expect(b.canPass()).toBe(false);
    clock.advance(1_000);
    expect(b.canPass()).toBe(true);
  });

  it('lets another probe through if the first never reports back', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1_000, now: clock.now });
    b.onFailure();
    clock.advance(1_000);
    expect(b.canPass()).toBe(true);
    clock.advance(999);
    expect(b.canPass()).toBe(false);
    clock.advance(1);
    expect(b.canPass()).toBe(true);
  });

  it('defaults to 5 failures and a 10 s cooldown', () => {
    const b = new CircuitBreaker();
    expect([b.failureThreshold, b.cooldownMs]).toEqual([5, 10_000]);
  });
});

describe('BreakerBoard', () => {
  it('keeps one breaker per server and refuses with upstream_unavailable while open', () => {
    const clock = new FakeClock();
    const seen: string[] = [];
    const board = new BreakerBoard({ failureThreshold: 2, cooldownMs: 5_000, now: clock.now, onStateChange: (s, st) => seen.push(`${s}:${st}`) });
    board.onFailure('github');
    board.onFailure('github');
    expect(board.check('memory')).toBeUndefined();
    const refusal = board.check('github');
    expect(refusal?.reason).toBe('upstream_unavailable');
    expect(refusal?.data).toMatchObject({ server: 'github', breaker: 'open', retryAfterSeconds: 5 });
    expect(refusal?.message).toMatch(/retry in about 5 s/);
    expect(board.states()).toEqual({ github: 'open', memory: 'closed' });
    clock.advance(5_000);
    expect(board.canPass('github')).toBe(true);
    board.onSuccess('github');
    expect(board.states().github).toBe('closed');
    expect(seen).toEqual(['github:open', 'github:half-open', 'github:closed']);
  });

  it('applies per-server overrides when the breaker is created', () => {
    const board = new BreakerBoard();
    expect(board.get('slow', { cooldownMs: 30_000 }).cooldownMs).toBe(30_000);
    board.remove('slow');
    expect(board.get('slow').cooldownMs).toBe(10_000);
  });
});

describe('retry policy', () => {
  it('retries only read-only or idempotent tools, at most maxRetries times', () => {
    expect(shouldRetry({ readOnlyHint: true }, 1)).toBe(true);
    expect(shouldRetry({ idempotentHint: true }, 2)).toBe(true);
    expect(shouldRetry({ readOnlyHint: true }, 3)).toBe(false);
    expect(shouldRetry({ readOnlyHint: true }, 2, 1)).toBe(false);
    expect(shouldRetry({ destructiveHint: true }, 1)).toBe(false);
    expect(shouldRetry({ readOnlyHint: false, idempotentHint: false }, 1)).toBe(false);
    expect(shouldRetry({ readOnlyHint: 'true' }, 1)).toBe(false);
    expect(shouldRetry(undefined, 1)).toBe(false);
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffMs(1, { random: () => 0 })).toBe(50);
    expect(backoffMs(1, { random: () => 0.999999 })).toBe(100);
    expect(backoffMs(3, { random: () => 0.999999 })).toBe(400);
    expect(backoffMs(10, { random: () => 0.999999, maxMs: 1_000 })).toBe(1_000);
  });

  it('sleep stops early when the call is cancelled', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
    await expect(sleep(1)).resolves.toBeUndefined();
  });
});

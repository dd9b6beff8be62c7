/** Retry policy for upstream calls: only tools that declare themselves safe to repeat are retried, a bounded number of times. */

export const DEFAULT_MAX_RETRIES = 2;

/**
 * Should a failed attempt be retried? `attempt` is the 1-based number of the attempt that just failed,
 * so with maxRetries 2 a call is tried at most 3 times. Only transport failures and timeouts should get
 * here; a tool's own error result is an answer, not a failure.
 */
export function shouldRetry(
  annotations: Record<string, unknown> | undefined,
  attempt: number,
  maxRetries = DEFAULT_MAX_RETRIES,
): boolean {
  if (!annotations || attempt > maxRetries) return false;
  // Repeating a call with side effects could apply them twice; the hints are the upstream's promise it is safe.
  return annotations.readOnlyHint === true || annotations.idempotentHint === true;
}

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

/** Exponential backoff with jitter (between half and all of base·2^(attempt-1), capped), so retries do not stampede. */
export function backoffMs(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 100;
  const max = opts.maxMs ?? 2_000;
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** Wait before a retry; rejects with the signal's reason when the call is cancelled meanwhile. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

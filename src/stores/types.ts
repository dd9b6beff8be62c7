/**
 * What every store shares. A store method answers `Awaitable<T>`: the embedded stores (memory, SQLite) answer with a
 * plain value, so the hot path pays no microtask; a shared store (Redis, PostgreSQL) answers with a promise. Callers
 * treat every answer as possibly a promise (docs/decisions/0015-store-interfaces.md).
 */
export type Awaitable<T> = T | Promise<T>;

/** Epoch milliseconds now; stores that keep windows or expiry take one, so tests drive them with a fake clock. */
export type Clock = () => number;

/** Apply `f` to a value that may be a promise, staying synchronous when it is not. */
export function mapAwaitable<T, U>(value: Awaitable<T>, f: (v: T) => Awaitable<U>): Awaitable<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}

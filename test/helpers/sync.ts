/** Embedded stores (memory, SQLite) answer synchronously; these type a test's direct reads of them as such. */
import type { Awaitable } from '../../src/stores/types.js';

/** An object's methods with their Awaitable answers typed as the plain value, for objects over embedded stores only. */
export type Sync<T> = { [K in keyof T]: T[K] extends (...a: infer A) => Awaitable<infer R> ? (...a: A) => R : T[K] };

/** The same object, typed as answering synchronously (it is over its embedded stores). */
export function embedded<T>(object: T): Sync<T> {
  return object as unknown as Sync<T>;
}

/** The value itself; a promise here means the store was not an embedded one, so the test must await instead. */
export function settled<T>(value: Awaitable<T>): T {
  if (value instanceof Promise) throw new Error('expected a synchronous answer from an embedded store: await this call instead');
  return value;
}

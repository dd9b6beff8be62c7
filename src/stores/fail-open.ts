/**
 * `state.failMode: open` (docs/decisions/0034-stores-chosen-at-start-and-fail-mode.md): while Redis does not answer,
 * the Redis-backed stores a call passes through admit it instead of failing it: counters, slices and live children
 * count nothing and refuse nothing, loop histories are kept in this replica's memory. Any other error still fails the call.
 */
import type { CounterStore } from './counters.js';
import type { SliceStore } from './delegation.js';
import type { LiveChildrenStore } from './live-children.js';
import type { LoopHistoryStore } from './loop-history.js';
import { MemoryLoopHistory } from './memory/loop-history.js';
import type { Awaitable } from './types.js';

/** Whether an error says Redis is unreachable (the call was not made), as opposed to a bug or bad data. */
export type IsUnreachable = (err: unknown) => boolean;

function orElse<T>(value: Awaitable<T>, unreachable: IsUnreachable, fallback: () => Awaitable<T>): Awaitable<T> {
  if (!(value instanceof Promise)) return value;
  return value.catch((err: unknown) => {
    if (unreachable(err)) return fallback();
    throw err;
  });
}

export function failOpenCounters(store: CounterStore, unreachable: IsUnreachable): CounterStore {
  const none = () => undefined;
  return {
    check: (r) => orElse(store.check(r), unreachable, none),
    reserve: (r) => orElse(store.reserve(r), unreachable, none),
    release: (r) => orElse(store.release(r), unreachable, none),
    add: (k, a) => orElse(store.add(k, a), unreachable, none),
    settle: (r, used) => orElse(store.settle(r, used), unreachable, none),
    beginWorkflow: (id, at) => orElse(store.beginWorkflow(id, at), unreachable, none),
    workflowTotals: (id) => orElse(store.workflowTotals(id), unreachable, none),
    windowTotals: (s, n) => orElse(store.windowTotals(s, n), unreachable, none),
    flush: () => store.flush(),
    close: () => store.close(),
  };
}

export function failOpenSlices(store: SliceStore, unreachable: IsUnreachable): SliceStore {
  return {
    check: (s) => orElse(store.check(s), unreachable, () => undefined),
    take: (s) => orElse(store.take(s), unreachable, () => undefined),
    giveBack: (s) => orElse(store.giveBack(s), unreachable, () => undefined),
    used: (jti) => orElse(store.used(jti), unreachable, () => 0),
    close: () => store.close(),
  };
}

export function failOpenLoopHistory(store: LoopHistoryStore, unreachable: IsUnreachable): LoopHistoryStore {
  const local = new MemoryLoopHistory();
  return {
    get: (id) => orElse(store.get(id), unreachable, () => local.get(id)),
    open: (id) => orElse(store.open(id), unreachable, () => local.open(id)),
    changed: (id, h) => orElse(store.changed(id, h), unreachable, () => local.changed()),
    delete: (id) => orElse(store.delete(id), unreachable, () => local.delete(id)),
  };
}

export function failOpenLiveChildren(store: LiveChildrenStore, unreachable: IsUnreachable): LiveChildrenStore {
  return {
    reserve: (p, c, exp, max) => orElse(store.reserve(p, c, exp, max), unreachable, () => undefined),
    remove: (p, c) => orElse(store.remove(p, c), unreachable, () => undefined),
    removeNode: (p) => orElse(store.removeNode(p), unreachable, () => undefined),
    count: (p) => orElse(store.count(p), unreachable, () => 0),
  };
}

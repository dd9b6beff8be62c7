/** Per-call send options of a cancellable upstream call (UpstreamSession.start). */
import type { Step } from '../gateway/types.js';
import type { Cancellable } from './session.js';
import type { SendOptions } from './transport.js';

/**
 * Send options whose signal is made when a connector first reads it. A class, not an object literal with a getter:
 * such a literal is made in dictionary mode, its getter held by an AccessorPair that V8 allocates in old space, and
 * that pair kept the getter's closure (and through it the call's pending entry, hooks, reply and downstream request)
 * alive through every scavenge until the next mark-compact (decision 0047).
 */
export class LazySignalOptions implements SendOptions {
  constructor(
    readonly headers: Readonly<Record<string, string>> | undefined,
    readonly step: Step | undefined,
    private readonly cancel: Cancellable,
  ) {}

  get signal(): AbortSignal {
    return this.cancel.signal;
  }
}

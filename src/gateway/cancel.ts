/** Cancellation of one call without an AbortSignal unless something asks for one: Node 20 makes each one slowly. */
import type { Cancellable } from '../upstream/session.js';

export class LazyAbort implements Cancellable {
  aborted = false;
  reason: unknown;
  private controller?: AbortController;
  private listeners?: Array<() => void>;

  /** A real signal, made on first use (already aborted when the call was). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l();
    this.controller?.abort(reason);
  }

  /** Run `listener` once on abort; returns the function that removes it. */
  onAbort(listener: () => void): () => void {
    (this.listeners ??= []).push(listener);
    return () => {
      const i = this.listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.listeners!.splice(i, 1);
    };
  }
}

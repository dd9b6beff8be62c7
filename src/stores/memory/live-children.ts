/** Live sub-agents per node in process memory: the reference behaviour of LiveChildrenStore. */
import type { LiveChildrenStore } from '../live-children.js';
import type { Clock } from '../types.js';

export class MemoryLiveChildren implements LiveChildrenStore {
  private readonly children = new Map<string, Map<string, number>>();
  private readonly now: Clock;

  constructor(opts: { now?: Clock } = {}) {
    this.now = opts.now ?? Date.now;
  }

  reserve(parentNode: string, child: string, expiresAt: number, max: number): number | undefined {
    if (!Number.isFinite(max)) throw new RangeError(`maxChildren must be a finite number, got ${max}; no child was recorded`);
    const live = this.count(parentNode);
    const kids = this.children.get(parentNode);
    if (kids?.has(child)) {
      kids.set(child, expiresAt);
      return undefined;
    }
    if (live >= max) return live;
    if (kids) kids.set(child, expiresAt);
    else this.children.set(parentNode, new Map([[child, expiresAt]]));
    return undefined;
  }

  remove(parentNode: string, child: string): void {
    const kids = this.children.get(parentNode);
    kids?.delete(child);
    if (kids?.size === 0) this.children.delete(parentNode);
  }

  removeNode(parentNode: string): void {
    this.children.delete(parentNode);
  }

  count(parentNode: string): number {
    const kids = this.children.get(parentNode);
    if (!kids) return 0;
    const now = this.now();
    for (const [child, expiresAt] of kids) if (expiresAt <= now) kids.delete(child);
    if (kids.size === 0) this.children.delete(parentNode);
    return kids.size;
  }
}

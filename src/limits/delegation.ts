/**
 * Delegation limits per workflow node: how deep a chain of sub-agents may go and how many live children a
 * node may have at once. Node keys are opaque to this room (e.g. `${workflowId}/${jti}`).
 */
import type { Refusal } from '../gateway/types.js';

export interface DelegationLimitsOptions {
  now?: () => number;
}

export class DelegationLimits {
  private readonly now: () => number;
  /** Parent node → its live children and when each expires (Infinity: until removed). */
  private readonly children = new Map<string, Map<string, number>>();

  constructor(opts: DelegationLimitsOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * May `parentNodeKey` mint one more child at `depth` (hops below the root; the root agent is 0, its child 1)?
   * `maxDepth` is the tightest along the chain, computed by the caller. Sync, so check + addChild is atomic.
   */
  canDelegate(parentNodeKey: string, depth: number, maxDepth: number, maxChildren: number): Refusal | undefined {
    if (depth > maxDepth) {
      return {
        reason: 'delegation_denied',
        message:
          `Delegation would reach depth ${depth}, beyond the allowed ${maxDepth}; ` +
          `do this work in the current agent, or an admin can raise delegation.maxDepth in agents.d.`,
        data: { limit: 'delegation.maxDepth', used: depth - 1, max: maxDepth },
      };
    }
    const live = this.liveChildren(parentNodeKey);
    if (live >= maxChildren) {
      return {
        reason: 'delegation_denied',
        message:
          `This agent already has ${live} live sub-agents (at most ${maxChildren}); ` +
          `wait for one to finish or expire, or an admin can raise delegation.maxChildren in agents.d.`,
        data: { limit: 'delegation.maxChildren', used: live, max: maxChildren },
      };
    }
    return undefined;
  }

  /** Record a live child; `expiresAt` (epoch ms, e.g. its token's exp) lets it lapse without a removeChild. */
  addChild(parentNodeKey: string, childNodeKey: string, expiresAt = Number.POSITIVE_INFINITY): void {
    let kids = this.children.get(parentNodeKey);
    if (!kids) {
      kids = new Map();
      this.children.set(parentNodeKey, kids);
    }
    kids.set(childNodeKey, expiresAt);
  }

  removeChild(parentNodeKey: string, childNodeKey: string): void {
    const kids = this.children.get(parentNodeKey);
    if (!kids) return;
    kids.delete(childNodeKey);
    if (kids.size === 0) this.children.delete(parentNodeKey);
  }

  /** Forget a node and its children (its workflow ended or was killed). */
  removeNode(nodeKey: string): void {
    this.children.delete(nodeKey);
  }

  liveChildren(parentNodeKey: string): number {
    const kids = this.children.get(parentNodeKey);
    if (!kids) return 0;
    const now = this.now();
    for (const [child, expiresAt] of kids) if (expiresAt <= now) kids.delete(child);
    if (kids.size === 0) this.children.delete(parentNodeKey);
    return kids.size;
  }
}

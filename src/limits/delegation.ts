/**
 * Delegation limits per workflow node: how deep a chain of sub-agents may go and how many live children a
 * node may have at once. Node keys are opaque to this room (e.g. `${workflowId}/${jti}`). The live children are
 * kept in a LiveChildrenStore: in memory for one gateway, in Redis when replicas share one count.
 */
import type { Refusal } from '../gateway/types.js';
import type { LiveChildrenStore } from '../stores/live-children.js';
import { MemoryLiveChildren } from '../stores/memory/live-children.js';
import type { Awaitable } from '../stores/types.js';

export interface DelegationLimitsOptions {
  /** Where live children are counted (from openStores); default: this process's memory. */
  children?: LiveChildrenStore;
  now?: () => number;
}

/** A child recorded without a check (counted again after a restart): no finite maxChildren is this large. */
const UNCHECKED = Number.MAX_SAFE_INTEGER;

export class DelegationLimits {
  readonly children: LiveChildrenStore;

  constructor(opts: DelegationLimitsOptions = {}) {
    this.children = opts.children ?? new MemoryLiveChildren({ now: opts.now });
  }

  /** May a child sit at `depth` (hops below the root; the root agent is 0, its child 1)? `maxDepth` is the tightest along the chain. */
  checkDepth(depth: number, maxDepth: number): Refusal | undefined {
    if (depth <= maxDepth) return undefined;
    return {
      reason: 'delegation_denied',
      message:
        `Delegation would reach depth ${depth}, beyond the allowed ${maxDepth}; ` +
        `do this work in the current agent, or an admin can raise delegation.maxDepth in agents.d.`,
      data: { limit: 'delegation.maxDepth', used: depth - 1, max: maxDepth },
    };
  }

  /**
   * Take one of `parentNodeKey`'s `maxChildren` slots for `childNodeKey` until `expiresAt` (epoch ms), before its
   * token is signed; the check and the record are one atomic step of the store. Give it back with removeChild.
   */
  async reserveChild(parentNodeKey: string, childNodeKey: string, expiresAt: number, maxChildren: number): Promise<Refusal | undefined> {
    const live = await this.children.reserve(parentNodeKey, childNodeKey, expiresAt, maxChildren);
    if (live === undefined) return undefined;
    return {
      reason: 'delegation_denied',
      message:
        `This agent already has ${live} live sub-agents (at most ${maxChildren}); ` +
        `wait for one to finish or expire, or an admin can raise delegation.maxChildren in agents.d.`,
      data: { limit: 'delegation.maxChildren', used: live, max: maxChildren },
    };
  }

  /** Record a live child without a check (a token minted before a restart); `expiresAt` lets it lapse by itself. */
  async addChild(parentNodeKey: string, childNodeKey: string, expiresAt = Number.POSITIVE_INFINITY): Promise<void> {
    await this.children.reserve(parentNodeKey, childNodeKey, expiresAt, UNCHECKED);
  }

  removeChild(parentNodeKey: string, childNodeKey: string): Awaitable<void> {
    return this.children.remove(parentNodeKey, childNodeKey);
  }

  /** Forget a node and its children (its workflow ended or was killed). */
  removeNode(nodeKey: string): Awaitable<void> {
    return this.children.removeNode(nodeKey);
  }

  liveChildren(parentNodeKey: string): Awaitable<number> {
    return this.children.count(parentNodeKey);
  }
}

/**
 * Live sub-agents per delegating node, for `delegation.maxChildren`: a slot is reserved before a child token is signed,
 * so two replicas minting at once for one parent cannot both take the last slot. A child lapses at its token's expiry.
 * (DelegationLimits in src/limits/delegation.ts turns its answers into refusals; openStores picks memory or Redis.)
 */
import type { Awaitable } from './types.js';

export interface LiveChildrenStore {
  /** Atomically: with fewer than `max` live children, record `child` (until `expiresAt`) and answer undefined; else the live count. */
  reserve(parentNode: string, child: string, expiresAt: number, max: number): Awaitable<number | undefined>;
  /** The child ended, was revoked, or its token was never issued. */
  remove(parentNode: string, child: string): Awaitable<void>;
  /** Forget a node and its children (its workflow ended or was killed). */
  removeNode(parentNode: string): Awaitable<void>;
  count(parentNode: string): Awaitable<number>;
}

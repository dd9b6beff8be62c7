/**
 * Delegation state: minted tokens (which token was minted from which, so revoking one revokes its descendants),
 * revocations, and the tool-call slices budgeted tokens spend. Token records never change once minted and are read on
 * every delegated call, so `get` and `isRevoked` answer synchronously (a shared implementation serves them from a
 * replica-local copy it keeps current); writes and lineage walks may answer with a promise.
 */
import type { Awaitable } from './types.js';

export interface MintedToken {
  jti: string;
  /** The subject token's jti, when it had one. */
  parentJti?: string;
  /** The node (LiveChildrenStore parent) the token counts as a live child of. */
  parentNode: string;
  workflowId: string;
  agent: string;
  parentAgent: string;
  depth: number;
  scope?: string[];
  budgetToolCalls?: number;
  delegatingStep?: number;
  issuedAt: number;
  expiresAt: number;
}

export interface DelegationTokenStore {
  record(t: MintedToken): Awaitable<void>;
  get(jti: string): MintedToken | undefined;
  /**
   * Shared stores only: bring a token minted on another replica, and the tokens it was minted from, into the local
   * copy before its first call here (the announcement may still be on its way). Resolves false when no replica minted it.
   */
  load?(jti: string): Promise<boolean>;
  /** Whether the gateway knows this jti: minted here, or the parent of a token minted here. */
  knows(jti: string): Awaitable<boolean>;
  /** Tokens that are neither expired nor revoked: the live children to count again after a restart. */
  liveTokens(): Awaitable<MintedToken[]>;
  isRevoked(jti: string): boolean;
  /** The tokens minted from `jti`, at any depth. */
  descendants(jti: string): Awaitable<MintedToken[]>;
  /** Revoke a token and everything minted from it; returns what was revoked (the token itself first). */
  revoke(jti: string): Awaitable<{ revoked: string[]; descendants: MintedToken[] }>;
}

/** One budgeted token a call draws on: its jti, its budget of tool calls, and when it expires (epoch ms). */
export interface Slice {
  jti: string;
  max: number;
  expiresAt: number;
}

/** The first slice without room, and what it has used. */
export interface FullSlice {
  slice: Slice;
  used: number;
}

/** Tool calls spent per budgeted token; kept until the token expires, so a restart gives no slice a fresh count. */
export interface SliceStore {
  /** The first slice that has no room for one more call, taking nothing. */
  check(slices: readonly Slice[]): Awaitable<FullSlice | undefined>;
  /** Atomically: the first slice without room, or (none) one call taken from every slice. */
  take(slices: readonly Slice[]): Awaitable<FullSlice | undefined>;
  /** Give back one call to each slice (the call was refused after its commit). */
  giveBack(slices: readonly Slice[]): Awaitable<void>;
  used(jti: string): Awaitable<number>;
  close(): Awaitable<void>;
}

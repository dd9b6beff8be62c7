/** Pending human approvals (SPEC §10) behind an async store: memory for tests, SQLite by default. */
import { createHash } from 'node:crypto';

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';
export type ApprovalOutcome = Exclude<ApprovalState, 'pending'>;
export const APPROVAL_STATES: readonly ApprovalState[] = ['pending', 'approved', 'denied', 'expired', 'cancelled'];

/** One call held for a human, bound to exactly that call: agent, workflow, tool and arguments digest. */
export interface ApprovalRecord {
  id: string;
  agent: string;
  user?: string;
  workflowId: string;
  server?: string;
  tool: string;
  /** The arguments in full: a human must never approve a value that was cut off. */
  args: Record<string, unknown>;
  argsDigest: string;
  /** Epoch ms. */
  createdAt: number;
  expiresAt: number;
  state: ApprovalState;
  decidedBy?: string;
  decidedAt?: number;
  reason?: string;
}

export interface ApprovalDecision {
  by: string;
  at: number;
  reason?: string;
}

export interface ApprovalListFilter {
  /** `decided` is every state but pending. */
  state?: ApprovalState | 'decided';
  /** Newest first; at most this many (1..1000, default 100). */
  limit?: number;
  /** Keyset paging: only approvals created before this one (its id). */
  before?: string;
}

export interface ApprovalsStore {
  create(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  list(filter?: ApprovalListFilter): Promise<ApprovalRecord[]>;
  /**
   * Move a pending approval to its final state, atomically: the first settle wins and later ones get undefined
   * (an approval is used once).
   */
  settle(id: string, outcome: ApprovalOutcome, decision: ApprovalDecision): Promise<ApprovalRecord | undefined>;
  close(): void;
}

/** Stable JSON (keys sorted at every level), so the same arguments always give the same digest. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as Record<string, unknown>)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function argsDigest(args: Readonly<Record<string, unknown>> | undefined): string {
  return `sha256:${createHash('sha256').update(canonical(args ?? {})).digest('hex')}`;
}

export function listLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  return Math.max(1, Math.min(1000, Math.floor(limit)));
}

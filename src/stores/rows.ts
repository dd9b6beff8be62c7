/**
 * Row ↔ record mapping shared by the SQLite and PostgreSQL stores, whose tables have the same columns. PostgreSQL
 * returns BIGINT as a string and SQLite as a number, hence Number() on every such column.
 */
import { modelFields } from '../audit/model-columns.js';
import type { WorkflowState } from '../gateway/types.js';
import type { ApprovalRecord, ApprovalState } from './approvals.js';
import type { MintedToken } from './delegation.js';
import type { WorkflowStepView, WorkflowSummary } from './workflow-views.js';

/** A BIGINT column as either database returns it. */
type Big = number | string;

export interface ApprovalRow {
  id: string;
  agent: string;
  user: string | null;
  workflow_id: string;
  server: string | null;
  tool: string;
  args: string;
  args_digest: string;
  created_at: Big;
  expires_at: Big;
  state: string;
  decided_by: string | null;
  decided_at: Big | null;
  reason: string | null;
}

/** The approvals columns in the order approvalValues() gives them. */
export const APPROVAL_COLUMNS = 'id, agent, "user", workflow_id, server, tool, args, args_digest, created_at, expires_at, state, decided_by, decided_at, reason';

export function approvalFromRow(r: ApprovalRow): ApprovalRecord {
  return {
    id: r.id,
    agent: r.agent,
    ...(r.user !== null ? { user: r.user } : {}),
    workflowId: r.workflow_id,
    ...(r.server !== null ? { server: r.server } : {}),
    tool: r.tool,
    args: JSON.parse(r.args) as Record<string, unknown>,
    argsDigest: r.args_digest,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    state: r.state as ApprovalState,
    ...(r.decided_by !== null ? { decidedBy: r.decided_by } : {}),
    ...(r.decided_at !== null ? { decidedAt: Number(r.decided_at) } : {}),
    ...(r.reason !== null ? { reason: r.reason } : {}),
  };
}

export function approvalValues(a: ApprovalRecord): Array<string | number | null> {
  return [a.id, a.agent, a.user ?? null, a.workflowId, a.server ?? null, a.tool, JSON.stringify(a.args), a.argsDigest, a.createdAt, a.expiresAt, a.state, a.decidedBy ?? null, a.decidedAt ?? null, a.reason ?? null];
}

export interface TokenRow {
  jti: string;
  parent_jti: string | null;
  parent_node: string;
  workflow_id: string;
  agent: string;
  parent_agent: string;
  depth: number;
  scope: string | null;
  budget_tool_calls: number | null;
  delegating_step: number | null;
  issued_at: Big;
  expires_at: Big;
}

/** The delegation_tokens columns in the order tokenValues() gives them. */
export const TOKEN_COLUMNS = 'jti, parent_jti, parent_node, workflow_id, agent, parent_agent, depth, scope, budget_tool_calls, delegating_step, issued_at, expires_at';

export function tokenFromRow(r: TokenRow): MintedToken {
  return {
    jti: r.jti,
    parentJti: r.parent_jti ?? undefined,
    parentNode: r.parent_node,
    workflowId: r.workflow_id,
    agent: r.agent,
    parentAgent: r.parent_agent,
    depth: r.depth,
    scope: r.scope ? r.scope.split(' ') : undefined,
    budgetToolCalls: r.budget_tool_calls ?? undefined,
    delegatingStep: r.delegating_step ?? undefined,
    issuedAt: Number(r.issued_at),
    expiresAt: Number(r.expires_at),
  };
}

export function tokenValues(t: MintedToken): Array<string | number | null> {
  return [t.jti, t.parentJti ?? null, t.parentNode, t.workflowId, t.agent, t.parentAgent, t.depth, t.scope ? t.scope.join(' ') : null, t.budgetToolCalls ?? null, t.delegatingStep ?? null, t.issuedAt, t.expiresAt];
}

export interface WorkflowRow {
  seq: Big;
  id: string;
  agent: string;
  user: string | null;
  state: WorkflowState;
  kind: string;
  started_at: Big;
  ended_at: Big | null;
  step_count: number;
  traceparent: string | null;
  why: string | null;
}

/** An audit row as the console's step tree reads it. */
export interface StepRow {
  step: number;
  parent_step: number | null;
  agent: string;
  user: string | null;
  kind: string;
  server: string | null;
  tool: string;
  outcome: string;
  reason: string | null;
  time: Big;
  duration_ms: number;
  bytes: Big | null;
  tokens: Big | null;
  model: string | null;
  cost_usd: number | null;
  model_info: string | null;
}

const iso = (ms: Big | null): string | null => (ms === null ? null : new Date(Number(ms)).toISOString());
const num = (v: Big | null): number | null => (v === null ? null : Number(v));

/** The row as stored; the SQLite registry lays its in-memory state and step count over it. */
export function workflowSummary(row: WorkflowRow): WorkflowSummary {
  return {
    id: row.id,
    agent: row.agent,
    user: row.user,
    state: row.state,
    kind: row.kind,
    startedAt: iso(row.started_at) as string,
    endedAt: iso(row.ended_at),
    steps: row.step_count,
    traceparent: row.traceparent,
    why: row.why,
  };
}

export function stepView(s: StepRow): WorkflowStepView {
  return {
    step: s.step,
    parentStep: s.parent_step,
    agent: s.agent,
    user: s.user,
    kind: s.kind,
    server: s.server,
    tool: s.tool,
    outcome: s.outcome,
    reason: s.reason,
    startedAt: new Date(Number(s.time)).toISOString(),
    durationMs: s.duration_ms,
    bytes: num(s.bytes),
    tokens: num(s.tokens),
    ...(s.model !== null ? { model: modelFields(s) } : {}),
  };
}

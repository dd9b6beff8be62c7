/** Reading the audit trail: filters, records, pages and cursors (the SQL is in src/stores/sqlite/audit/query.ts). */
import type { AuditRow } from './chain.js';
import { modelFields, type ModelFields } from './model-columns.js';

export type AuditOutcome = 'ok' | 'error' | 'refused';
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['ok', 'error', 'refused'];

export interface AuditFilter {
  agent?: string;
  user?: string;
  /** Upstream tool/prompt/resource name, or the exposed `server__tool` form. */
  tool?: string;
  server?: string;
  outcome?: AuditOutcome;
  workflowId?: string;
  /** Refusal or error reason (SPEC §7), e.g. policy_denied. */
  reason?: string;
  /** Words that must appear, in this order, in the (redacted) arguments. */
  q?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, inclusive. */
  until?: number;
  /** Page size, 1..1000 (default 100). */
  limit?: number;
  /** Opaque cursor from a previous page's nextCursor. */
  cursor?: string;
}

/** One audit record as the admin API and the export show it. */
export interface AuditRecord {
  id: number;
  time: string;
  workflowId: string;
  step: number;
  parentStep: number | null;
  agent: string;
  user: string | null;
  chain: string[];
  kind: string;
  server: string | null;
  tool: string;
  args: unknown;
  outcome: string;
  reason: string | null;
  durationMs: number;
  bytes: number | null;
  tokens: number | null;
  traceparent: string | null;
  /** Model calls: model, cost and the rest of the model fields (see audit/model-columns.ts). */
  model?: ModelFields;
  prevHash: string;
  hash: string;
}

export interface AuditPage {
  records: AuditRecord[];
  nextCursor: string | null;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** A filter or cursor the caller got wrong; the admin API answers 400 with its message. */
export class InvalidQueryError extends Error {
  override readonly name = 'InvalidQueryError';
}

/** Cursors are opaque to clients: a tagged, base64url-encoded row key. */
export function encodeCursor(tag: string, key: number): string {
  return Buffer.from(`${tag}:${key}`, 'utf8').toString('base64url');
}

export function decodeCursor(tag: string, cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^([a-z]+):(\d{1,15})$/.exec(text);
  if (!match || match[1] !== tag) {
    throw new InvalidQueryError(`cursor "${cursor}" is not valid here; pass the nextCursor of the previous page unchanged`);
  }
  return Number(match[2]);
}

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new InvalidQueryError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${limit}`);
  }
  return limit;
}


function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function toAuditRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    time: new Date(row.time).toISOString(),
    workflowId: row.workflow_id,
    step: row.step,
    parentStep: row.parent_step,
    agent: row.agent,
    user: row.user,
    chain: parseJson(row.chain) as string[],
    kind: row.kind,
    server: row.server,
    tool: row.tool,
    args: parseJson(row.args),
    outcome: row.outcome,
    reason: row.reason,
    durationMs: row.duration_ms,
    bytes: row.bytes,
    tokens: row.tokens,
    traceparent: row.traceparent,
    ...(row.model ? { model: modelFields({ model: row.model, cost_usd: row.cost_usd ?? null, model_info: row.model_info ?? null }) } : {}),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}


export function checkSearch(q: string | undefined): void {
  if (q !== undefined && q.length > MAX_SEARCH_CHARS) throw new InvalidQueryError(`q is at most ${MAX_SEARCH_CHARS} characters, got ${q.length}`);
}

/** Longest argument search (q) accepted. */
export const MAX_SEARCH_CHARS = 200;

/** Words as the search index splits text: runs of letters and digits, case folded. */
export function searchWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The words of `q`, in order and next to each other, among the words of the arguments' JSON. */
function hasPhrase(args: string | null, q: string): boolean {
  const want = searchWords(q);
  if (want.length === 0) return false;
  const have = searchWords(args ?? '');
  for (let i = 0; i + want.length <= have.length; i++) if (want.every((w, j) => have[i + j] === w)) return true;
  return false;
}

/** Whether a row matches a filter, as the SQL store's WHERE clause decides it; a bad outcome throws InvalidQueryError. */
export function matchesFilter(row: AuditRow, filter: AuditFilter): boolean {
  if (filter.outcome !== undefined && !AUDIT_OUTCOMES.includes(filter.outcome)) {
    throw new InvalidQueryError(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}, got "${filter.outcome}"`);
  }
  checkSearch(filter.q);
  if (filter.agent !== undefined && row.agent !== filter.agent) return false;
  if (filter.user !== undefined && row.user !== filter.user) return false;
  if (filter.server !== undefined && row.server !== filter.server) return false;
  if (filter.workflowId !== undefined && row.workflow_id !== filter.workflowId) return false;
  if (filter.outcome !== undefined && row.outcome !== filter.outcome) return false;
  if (filter.tool !== undefined && row.tool !== filter.tool && (row.server === null || `${row.server}__${row.tool}` !== filter.tool)) return false;
  if (filter.reason !== undefined && row.reason !== filter.reason) return false;
  if (filter.q !== undefined && !hasPhrase(row.args, filter.q)) return false;
  if (filter.since !== undefined && row.time < filter.since) return false;
  if (filter.until !== undefined && row.time > filter.until) return false;
  return true;
}

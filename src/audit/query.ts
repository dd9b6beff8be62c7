/** Reading the audit trail: filters, keyset paging on id (newest first), and a paged export for streaming. */
import type { Db } from './db.js';
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

function buildWhere(filter: AuditFilter): { clauses: string[]; params: Array<string | number> } {
  const clauses: string[] = [];
  const params: Array<string | number> = [];
  const eq = (column: string, value: string | undefined): void => {
    if (value === undefined) return;
    clauses.push(`${column} = ?`);
    params.push(value);
  };
  eq('agent', filter.agent);
  eq('"user"', filter.user);
  eq('server', filter.server);
  eq('workflow_id', filter.workflowId);
  if (filter.outcome !== undefined) {
    if (!AUDIT_OUTCOMES.includes(filter.outcome)) {
      throw new InvalidQueryError(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}, got "${filter.outcome}"`);
    }
    eq('outcome', filter.outcome);
  }
  if (filter.tool !== undefined) {
    clauses.push(`(tool = ? OR (server || '__' || tool) = ?)`);
    params.push(filter.tool, filter.tool);
  }
  if (filter.since !== undefined) {
    clauses.push('time >= ?');
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    clauses.push('time <= ?');
    params.push(filter.until);
  }
  return { clauses, params };
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

function selectRows(db: Db, filter: AuditFilter, after: { op: '<' | '>'; id: number } | undefined, order: 'ASC' | 'DESC', limit: number): AuditRow[] {
  const { clauses, params } = buildWhere(filter);
  if (after) {
    clauses.push(`id ${after.op} ?`);
    params.push(after.id);
  }
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
  const sql = `SELECT * FROM audit ${where} ORDER BY id ${order} LIMIT ?`;
  return db.prepare<Array<string | number>, AuditRow>(sql).all(...params, limit);
}

/** One page, newest first; nextCursor is null on the last page. */
export function queryAuditPage(db: Db, filter: AuditFilter): AuditPage {
  const limit = pageSize(filter.limit);
  const before = filter.cursor !== undefined ? { op: '<' as const, id: decodeCursor('a', filter.cursor) } : undefined;
  const rows = selectRows(db, filter, before, 'DESC', limit + 1);
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return { records: page.map(toAuditRecord), nextCursor: more && last ? encodeCursor('a', last.id) : null };
}

/**
 * Every matching record, oldest first, fetched in pages so no statement stays open across the consumer's awaits
 * (the writer shares the connection). `limit` and `cursor` are ignored. A bad filter throws here, before streaming.
 */
export function exportAuditRows(db: Db, filter: AuditFilter, batch = 500): Generator<AuditRecord, void, undefined> {
  const { limit: _limit, cursor: _cursor, ...where } = filter;
  buildWhere(where);
  return pagesOldestFirst(db, where, batch);
}

function* pagesOldestFirst(db: Db, where: AuditFilter, batch: number): Generator<AuditRecord, void, undefined> {
  let afterId = 0;
  for (;;) {
    const rows = selectRows(db, where, { op: '>', id: afterId }, 'ASC', batch);
    for (const row of rows) yield toAuditRecord(row);
    const last = rows[rows.length - 1];
    if (!last || rows.length < batch) return;
    afterId = last.id;
  }
}

/** Reading the audit table: filters as SQL, keyset paging on id (newest first), and a paged export for streaming. */
import type { AuditRow } from '../../../audit/chain.js';
import { AUDIT_OUTCOMES, decodeCursor, encodeCursor, InvalidQueryError, pageSize, toAuditRecord, type AuditFilter, type AuditPage, type AuditRecord } from '../../../audit/query.js';
import type { Db } from '../db.js';

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

/** Reading the audit table: filters as SQL, keyset paging on id (newest first), and a paged export for streaming. */
import type { AuditRow } from '../../../audit/chain.js';
import { searchPhrase } from './search.js';
import { checkSearch, decodeCursor, encodeCursor, pageSize, toAuditRecord, type AuditFilter, type AuditPage, type AuditRecord } from '../../../audit/query.js';
import type { Db } from '../db.js';
import { auditEqualities } from '../../audit-filter.js';

function buildWhere(filter: AuditFilter): { clauses: string[]; params: Array<string | number> } {
  const equal = auditEqualities(filter);
  const clauses: string[] = equal.map(([column]) => `${column} = ?`);
  const params: Array<string | number> = equal.map(([, value]) => value);
  if (filter.tool !== undefined) {
    // Server names hold no "__", so the exposed form splits at the first one; both arms use an index.
    const cut = filter.tool.indexOf('__');
    if (cut > 0) {
      // Written so the (tool, id) index serves it: an OR over two columns would read every row of the server.
      clauses.push('tool IN (?, ?) AND (tool = ? OR server = ?)');
      params.push(filter.tool, filter.tool.slice(cut + 2), filter.tool, filter.tool.slice(0, cut));
    } else {
      clauses.push('tool = ?');
      params.push(filter.tool);
    }
  }
  if (filter.q !== undefined) {
    checkSearch(filter.q);
    clauses.push('id IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ?)');
    params.push(searchPhrase(filter.q));
  }
  // Time bounds also bound id (from the time index), so a range far from the newest rows is not found by a scan.
  if (filter.since !== undefined) {
    // INDEXED BY: without it min(id) walks the rowids from the oldest until a row is recent enough.
    clauses.push('time >= ?', 'id >= (SELECT coalesce(min(id), 9007199254740991) FROM audit INDEXED BY audit_time WHERE time >= ?)');
    params.push(filter.since, filter.since);
  }
  if (filter.until !== undefined) {
    clauses.push('time <= ?', 'id <= (SELECT coalesce(max(id), -1) FROM audit INDEXED BY audit_time WHERE time <= ?)');
    params.push(filter.until, filter.until);
  }
  return { clauses, params };
}

const NARROWING: ReadonlyArray<keyof AuditFilter> = ['agent', 'user', 'server', 'tool', 'outcome', 'reason', 'workflowId', 'since', 'until'];

function selectRows(db: Db, filter: AuditFilter, after: { op: '<' | '>'; id: number } | undefined, order: 'ASC' | 'DESC', limit: number): AuditRow[] {
  if (filter.q !== undefined && NARROWING.every((k) => filter[k] === undefined)) return searchOnly(db, filter.q, after, order, limit);
  const { clauses, params } = buildWhere(filter);
  if (after) {
    clauses.push(`id ${after.op} ?`);
    params.push(after.id);
  }
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
  const sql = `SELECT * FROM audit ${where} ORDER BY id ${order} LIMIT ?`;
  return db.prepare<Array<string | number>, AuditRow>(sql).all(...params, limit);
}

/** A search alone pages inside the FTS index, so a common word reads one page of matches, not all of them. */
function searchOnly(db: Db, q: string, after: { op: '<' | '>'; id: number } | undefined, order: 'ASC' | 'DESC', limit: number): AuditRow[] {
  checkSearch(q);
  const bound = after ? `AND rowid ${after.op} ?` : '';
  const sql = `SELECT * FROM audit WHERE id IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ? ${bound} ORDER BY rowid ${order} LIMIT ?) ORDER BY id ${order}`;
  const params: Array<string | number> = [searchPhrase(q), ...(after ? [after.id] : []), limit];
  return db.prepare<Array<string | number>, AuditRow>(sql).all(...params);
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

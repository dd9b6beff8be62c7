/** Reading the audit trail on PostgreSQL: filters as SQL, keyset paging on id, a paged export, phrase search on a GIN index. */
import {
  AUDIT_OUTCOMES, checkSearch, decodeCursor, encodeCursor, InvalidQueryError, pageSize, searchWords, toAuditRecord,
  type AuditFilter, type AuditPage, type AuditRecord,
} from '../../../audit/query.js';
import type { AuditRow } from '../../../audit/chain.js';
import { ROW_COLUMNS, selectRows, type PgQueryable } from './rows.js';

/** The words of `q` next to each other and in order, as a tsquery; null when `q` has no words (nothing matches). */
export function searchQuery(q: string): string | null {
  const words = searchWords(q);
  // Words are letters and digits only, so quoting them is all the escaping a tsquery needs.
  return words.length === 0 ? null : words.map((w) => `'${w}'`).join(' <-> ');
}

class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

function buildWhere(filter: AuditFilter, p: Params): string[] {
  const clauses: string[] = [];
  const eq = (column: string, value: string | undefined): void => {
    if (value !== undefined) clauses.push(`${column} = ${p.add(value)}`);
  };
  eq('agent', filter.agent);
  eq('"user"', filter.user);
  eq('server', filter.server);
  eq('workflow_id', filter.workflowId);
  eq('reason', filter.reason);
  if (filter.outcome !== undefined) {
    if (!AUDIT_OUTCOMES.includes(filter.outcome)) {
      throw new InvalidQueryError(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}, got "${filter.outcome}"`);
    }
    eq('outcome', filter.outcome);
  }
  if (filter.tool !== undefined) {
    // Server names hold no "__", so the exposed form splits at the first one.
    const cut = filter.tool.indexOf('__');
    if (cut > 0) {
      const whole = p.add(filter.tool);
      clauses.push(`(tool = ${whole} OR (tool = ${p.add(filter.tool.slice(cut + 2))} AND server = ${p.add(filter.tool.slice(0, cut))}))`);
    } else {
      eq('tool', filter.tool);
    }
  }
  if (filter.q !== undefined) {
    checkSearch(filter.q);
    const query = searchQuery(filter.q);
    clauses.push(query === null ? 'false' : `search @@ to_tsquery('simple', ${p.add(query)})`);
  }
  // Time bounds also bound id (ids follow time closely), so paging a range far from the newest rows reads no more.
  if (filter.since !== undefined) {
    const since = p.add(filter.since);
    clauses.push(`time >= ${since}`, `id >= (SELECT coalesce(min(id), 9007199254740991) FROM audit WHERE time >= ${since})`);
  }
  if (filter.until !== undefined) {
    const until = p.add(filter.until);
    clauses.push(`time <= ${until}`, `id <= (SELECT coalesce(max(id), -1) FROM audit WHERE time <= ${until})`);
  }
  return clauses;
}

function pageOf(q: PgQueryable, filter: AuditFilter, after: { op: '<' | '>'; id: number } | undefined, order: 'ASC' | 'DESC', limit: number): Promise<AuditRow[]> {
  const p = new Params();
  const clauses = buildWhere(filter, p);
  if (after) clauses.push(`id ${after.op} ${p.add(after.id)}`);
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
  return selectRows(q, `SELECT ${ROW_COLUMNS} FROM audit ${where} ORDER BY id ${order} LIMIT ${p.add(limit)}`, p.values);
}

/** Check a filter before any statement runs, so a bad one throws InvalidQueryError with nothing read. */
export function checkFilter(filter: AuditFilter): void {
  buildWhere(filter, new Params());
}

/** One page, newest first; nextCursor is null on the last page. */
export async function queryAuditPage(q: PgQueryable, filter: AuditFilter): Promise<AuditPage> {
  const limit = pageSize(filter.limit);
  const before = filter.cursor !== undefined ? { op: '<' as const, id: decodeCursor('a', filter.cursor) } : undefined;
  checkFilter(filter);
  const rows = await pageOf(q, filter, before, 'DESC', limit + 1);
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return { records: page.map(toAuditRecord), nextCursor: more && last ? encodeCursor('a', last.id) : null };
}

/** Every matching record, oldest first, one page of `batch` at a time (`limit` and `cursor` are ignored). */
export async function* exportAuditRows(q: PgQueryable, filter: AuditFilter, batch = 500): AsyncGenerator<AuditRecord, void, undefined> {
  const { limit: _limit, cursor: _cursor, ...where } = filter;
  let afterId = 0;
  for (;;) {
    const rows = await pageOf(q, where, { op: '>', id: afterId }, 'ASC', batch);
    for (const row of rows) yield toAuditRecord(row);
    const last = rows[rows.length - 1];
    if (!last || rows.length < batch) return;
    afterId = last.id;
  }
}

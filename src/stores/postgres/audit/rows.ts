/** Audit rows to and from PostgreSQL: one INSERT of column arrays per batch, BIGINT text back to numbers, the head row. */
import type { AuditRow } from '../../../audit/chain.js';
import { GENESIS_HASH } from '../../../audit/chain.js';
import { checkHead, headMac, type AuditHead } from '../../../audit/head.js';
import type { PendingRecord } from '../../../audit/rows.js';
import type { QueryResult, QueryResultRow } from 'pg';

/** What runs a statement: the Postgres handle (health-tracked) or a transaction's client. */
export interface PgQueryable {
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
}

/** A transaction's client, which also runs named statements (parsed and planned once per connection). */
export interface PgClientQueryable extends PgQueryable {
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  query<R extends QueryResultRow = QueryResultRow>(config: { name: string; text: string; values: unknown[] }): Promise<QueryResult<R>>;
}

/** The stored columns in insert order, with the array type unnest() reads each from. */
const COLUMNS: ReadonlyArray<readonly [keyof AuditRow | 'replica', string]> = [
  ['id', 'bigint'], ['time', 'bigint'], ['workflow_id', 'text'], ['step', 'integer'], ['parent_step', 'integer'],
  ['agent', 'text'], ['user', 'text'], ['chain', 'text'], ['kind', 'text'], ['server', 'text'], ['tool', 'text'],
  ['args', 'text'], ['outcome', 'text'], ['reason', 'text'], ['duration_ms', 'double precision'], ['bytes', 'bigint'],
  ['tokens', 'bigint'], ['traceparent', 'text'], ['model', 'text'], ['team', 'text'], ['cost_usd', 'double precision'],
  ['model_info', 'text'], ['prev_hash', 'text'], ['hash', 'text'], ['replica', 'text'],
];

const NAMES = COLUMNS.map(([c]) => (c === 'user' ? '"user"' : c));
const WORDS_PARAM = COLUMNS.length + 1;
/** The search vector is built from words split here, not by the server, so it matches whatever the database's locale. */
const INSERT = `INSERT INTO audit (${NAMES.join(', ')}, search)
  SELECT ${COLUMNS.map((_, i) => `c${i}`).join(', ')}, to_tsvector('simple'::regconfig, words)
  FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')}, $${WORDS_PARAM}::text[])
    AS t (${COLUMNS.map((_, i) => `c${i}`).join(', ')}, words)`;

/** Every column of a stored row except the search vector, as AuditRow names them. */
export const ROW_COLUMNS = COLUMNS.filter(([c]) => c !== 'replica').map(([c]) => (c === 'user' ? '"user"' : c)).join(', ');

/** Insert a batch of rows in one statement, whatever its length (the parameters are arrays); `words` feed the search vector. */
export async function insertRows(q: PgQueryable, rows: readonly AuditRow[], words: readonly string[], replica: string): Promise<void> {
  if (rows.length === 0) return;
  const arrays = COLUMNS.map(([c]) => rows.map((r) => (c === 'replica' ? replica : (r[c] ?? null))));
  await q.query(INSERT, [...arrays, words]);
}

const HEAD_PARAM = WORDS_PARAM + 1;
/** A batch and the head after it in one statement: the rows go in, and the head moves, or neither (one transaction). */
const APPEND = `WITH appended AS (${INSERT})
  INSERT INTO audit_head (one, last_id, last_hash, records, keyed_from, mac, updated_at)
  VALUES (1, $${HEAD_PARAM}, $${HEAD_PARAM + 1}, $${HEAD_PARAM + 2}, $${HEAD_PARAM + 3}, $${HEAD_PARAM + 4}, $${HEAD_PARAM + 5})
  ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash, records = excluded.records,
    keyed_from = excluded.keyed_from, mac = excluded.mac, updated_at = excluded.updated_at`;

/** Insert a batch (numbered and chained after the head read under the chain lock) and write the new head, in one statement. */
export async function appendRows(
  q: PgClientQueryable,
  rows: readonly AuditRow[],
  words: readonly string[],
  replica: string,
  head: Omit<AuditHead, 'mac'>,
  key: Buffer | undefined,
): Promise<void> {
  const arrays = COLUMNS.map(([c]) => rows.map((r) => (c === 'replica' ? replica : (r[c] ?? null))));
  const mac = key ? headMac(key, head) : null;
  await q.query({
    name: 'switchyard-audit-append',
    text: APPEND,
    values: [...arrays, words, head.lastId, head.lastHash, head.records, head.keyedFrom, mac, Date.now()],
  });
}

/** The head as read inside the chain lock (withLockReading's read). */
export const READ_HEAD = 'SELECT last_id, last_hash, records, keyed_from, mac FROM audit_head WHERE one = 1';

export function headOf(row: HeadRow | undefined): AuditHead | undefined {
  return row && { lastId: Number(row.last_id), lastHash: row.last_hash, records: Number(row.records), keyedFrom: num(row.keyed_from), mac: row.mac };
}

type PgRow = Omit<AuditRow, 'id' | 'time' | 'bytes' | 'tokens'> & { id: string; time: string; bytes: string | null; tokens: string | null };

const num = (v: string | null): number | null => (v === null ? null : Number(v));

/** pg answers BIGINT as text (it may exceed 2^53); the trail's ids, times and sizes stay far below that. */
export function fromPg(row: PgRow): AuditRow {
  return { ...row, id: Number(row.id), time: Number(row.time), bytes: num(row.bytes), tokens: num(row.tokens) };
}

export async function selectRows(q: PgQueryable, sql: string, params: unknown[]): Promise<AuditRow[]> {
  const res = await q.query<PgRow>(sql, params);
  return res.rows.map(fromPg);
}

/** PostgreSQL text cannot hold NUL: the writer stores U+FFFD instead, before hashing, so the stored row verifies. */
const NUL = /\u0000/g;
const clean = <T extends string | undefined>(s: T): T => (s !== undefined && s.includes('\u0000') ? (s.replace(NUL, '\uFFFD') as T) : s);

export function withoutNul(p: PendingRecord): PendingRecord {
  const out: PendingRecord = {
    ...p,
    workflowId: clean(p.workflowId),
    agent: clean(p.agent),
    user: clean(p.user),
    kind: clean(p.kind),
    server: clean(p.server),
    tool: clean(p.tool),
    outcome: clean(p.outcome),
    reason: clean(p.reason),
    traceparent: clean(p.traceparent),
  };
  if (p.model) out.model = { ...p.model, name: clean(p.model.name), team: clean(p.model.team) };
  return out;
}

export interface HeadRow {
  last_id: string;
  last_hash: string;
  records: string;
  keyed_from: string | null;
  mac: string | null;
}

export async function readHead(q: PgQueryable): Promise<AuditHead | undefined> {
  const res = await q.query<HeadRow>(READ_HEAD);
  return headOf(res.rows[0]);
}

/** Call inside the chain lock's transaction. */
export async function writeHead(q: PgQueryable, head: Omit<AuditHead, 'mac'>, key: Buffer | undefined): Promise<void> {
  const mac = key ? headMac(key, head) : null;
  await q.query(
    `INSERT INTO audit_head (one, last_id, last_hash, records, keyed_from, mac, updated_at) VALUES (1, $1, $2, $3, $4, $5, $6)
     ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash, records = excluded.records,
       keyed_from = excluded.keyed_from, mac = excluded.mac, updated_at = excluded.updated_at`,
    [head.lastId, head.lastHash, head.records, head.keyedFrom, mac, Date.now()],
  );
}

export async function readAnchor(q: PgQueryable): Promise<{ lastId: number; lastHash: string } | undefined> {
  const res = await q.query<{ last_id: string; last_hash: string }>('SELECT last_id, last_hash FROM audit_anchor ORDER BY last_id DESC LIMIT 1');
  const row = res.rows[0];
  return row ? { lastId: Number(row.last_id), lastHash: row.last_hash } : undefined;
}

/**
 * Make sure the head exists and is ours; call inside the chain lock. A fresh database gets a head keyed from record 1
 * (or from after the rows present); an unkeyed head is keyed from the next record once a key is given.
 */
export async function initHead(q: PgQueryable, key: Buffer | undefined): Promise<void> {
  const head = await readHead(q);
  if (!head) {
    const last = (await q.query<{ id: string; hash: string }>('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1')).rows[0];
    const tip = last ? { lastId: Number(last.id), lastHash: last.hash } : ((await readAnchor(q)) ?? { lastId: 0, lastHash: GENESIS_HASH });
    const count = Number((await q.query<{ n: string }>('SELECT count(*) AS n FROM audit')).rows[0]?.n ?? 0);
    await writeHead(q, { ...tip, records: count, keyedFrom: key ? tip.lastId + 1 : null }, key);
    return;
  }
  if (head.mac === null && key) {
    await writeHead(q, { ...head, keyedFrom: head.lastId + 1 }, key);
    return;
  }
  const problem = checkHead(head, key);
  if (problem) throw new Error(`${problem}; every replica must mount the same audit.hmacKeyFile — fix it and start again (check with \`switchyard audit verify\`)`);
}

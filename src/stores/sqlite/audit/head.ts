/** The audit head row (table audit_head): read for verify, written in every write transaction of the audit writer. */
import { checkHead, headMac, type AuditHead } from '../../../audit/head.js';
import type { Db } from '../db.js';

interface HeadRow {
  last_id: number;
  last_hash: string;
  records: number;
  keyed_from: number | null;
  mac: string | null;
}

export function readHead(db: Db): AuditHead | undefined {
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'").get();
  if (!hasTable) return undefined;
  const row = db.prepare<[], HeadRow>('SELECT last_id, last_hash, records, keyed_from, mac FROM audit_head WHERE one = 1').get();
  return row && fromRow(row);
}

function fromRow(row: HeadRow): AuditHead {
  return { lastId: row.last_id, lastHash: row.last_hash, records: row.records, keyedFrom: row.keyed_from, mac: row.mac };
}

/** The head's prepared statements, for the writer's transactions. */
export class HeadStore {
  private readonly select;
  private readonly upsert;

  constructor(
    db: Db,
    private readonly key: Buffer | undefined,
  ) {
    this.select = db.prepare<[], HeadRow>('SELECT last_id, last_hash, records, keyed_from, mac FROM audit_head WHERE one = 1');
    this.upsert = db.prepare(
      `INSERT INTO audit_head (one, last_id, last_hash, records, keyed_from, mac, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash, records = excluded.records,
         keyed_from = excluded.keyed_from, mac = excluded.mac, updated_at = excluded.updated_at`,
    );
  }

  read(): AuditHead | undefined {
    const row = this.select.get();
    return row && fromRow(row);
  }

  /** Call inside a write transaction. */
  write(head: Omit<AuditHead, 'mac'>): void {
    const mac = this.key ? headMac(this.key, head) : null;
    this.upsert.run(head.lastId, head.lastHash, head.records, head.keyedFrom, mac, Date.now());
  }

  /**
   * Make sure a head exists and is ours, inside one write transaction. A database from before the head gets one for the
   * records it holds (`tip`, `count`); an unkeyed head is keyed from the next record on once a key is given.
   */
  init(tip: () => { lastId: number; lastHash: string }, count: () => number): void {
    const head = this.read();
    if (!head) {
      const t = tip();
      this.write({ ...t, records: count(), keyedFrom: this.key ? t.lastId + 1 : null });
      return;
    }
    if (head.mac === null && this.key) {
      this.write({ ...head, keyedFrom: head.lastId + 1 });
      return;
    }
    const problem = checkHead(head, this.key);
    if (problem) throw new Error(`${problem}; run \`switchyard audit verify\` and fix audit.hmacKeyFile before starting again`);
  }
}


/**
 * The audit head: where the chain ends (last id and hash) and how many records it holds, updated in every write
 * transaction and MACed with the audit key. Deleting the newest records, or rewriting the whole chain without the key,
 * no longer verifies.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Db } from './db.js';

export interface AuditHead {
  lastId: number;
  lastHash: string;
  /** Records present (the ones retention pruned are not counted). */
  records: number;
  /** First record id hashed with the key; null while the chain is unkeyed. */
  keyedFrom: number | null;
  /** HMAC-SHA256 of the other fields with the audit key; null while unkeyed. */
  mac: string | null;
}

export const AUDIT_KEY_FILE = 'audit-hmac.key';

/** `<dataDir>/keys/audit-hmac.key`, created on first start when audit.hmacKeyFile is not set. */
export function defaultAuditKeyPath(dataDir: string): string {
  return join(resolve(dataDir), 'keys', AUDIT_KEY_FILE);
}

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

export function headMac(key: Buffer, head: Omit<AuditHead, 'mac'>): string {
  return createHmac('sha256', key)
    .update(JSON.stringify(['switchyard-audit-head', head.lastId, head.lastHash, head.records, head.keyedFrom]))
    .digest('hex');
}

/** Why the head cannot be trusted with this key (undefined when it can, or when there is no head to check). */
export function checkHead(head: AuditHead | undefined, key: Buffer | undefined): string | undefined {
  if (!head) return key ? 'the audit head is missing although an audit key exists: the head row or the whole trail was deleted' : undefined;
  if (head.mac === null) {
    return key ? 'the audit head is not keyed although an audit key exists: the trail was rewritten by someone without the key' : undefined;
  }
  if (!key) return 'the trail is keyed: pass the audit key with --key FILE (audit.hmacKeyFile, default data/keys/audit-hmac.key)';
  const expected = Buffer.from(headMac(key, head), 'hex');
  const actual = Buffer.from(head.mac, 'hex');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    return 'the audit head does not match its MAC: it was rewritten, or this is not the key the gateway writes with';
  }
  return undefined;
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

/**
 * The audit key from `file`: 64+ hex digits, or at least 32 bytes of anything else. With `create`, a missing file is
 * created with a fresh random key (mode 0600); two processes creating it at once end up with the same key.
 */
export function loadAuditKey(file: string, opts: { create: boolean }): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the audit key ${file}: ${(err as Error).message}`);
    if (!opts.create) {
      throw new Error(`the audit key ${file} does not exist; create it with \`openssl rand -hex 32 > ${file} && chmod 600 ${file}\``);
    }
    createKeyFile(file);
    text = readFileSync(file, 'utf8');
  }
  const trimmed = text.trim();
  const key = /^(?:[0-9a-fA-F]{2}){32,}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'utf8');
  if (key.length < 32) throw new Error(`the audit key ${file} is too short (${key.length} bytes); it needs 32 random bytes, e.g. \`openssl rand -hex 32\``);
  return key;
}

function createKeyFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  try {
    // link() fails if the file exists, so a concurrent first start keeps whichever key landed first, complete.
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create the audit key ${file}: ${(err as Error).message}`);
  } finally {
    unlinkSync(tmp);
  }
}

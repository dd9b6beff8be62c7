/**
 * The audit head: where the chain ends (last id and hash) and how many records it holds, updated in every write
 * transaction and MACed with the audit key. Deleting the newest records, or rewriting the whole chain without the key,
 * no longer verifies.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

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

/**
 * The audit key for a trail in PostgreSQL (store.postgres): every replica must read the same key, so it comes from
 * audit.hmacKeyFile (a mounted secret) and is never created on the fly, where each replica would make its own.
 */
export function loadSharedAuditKey(hmacKeyFile: string | undefined): Buffer {
  if (hmacKeyFile === undefined) {
    throw new Error(
      'store.postgres is set, so every replica writes one shared audit chain and needs the same key: set audit.hmacKeyFile to a file all replicas mount (e.g. a Kubernetes Secret) holding `openssl rand -hex 32`',
    );
  }
  return loadAuditKey(hmacKeyFile, { create: false });
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

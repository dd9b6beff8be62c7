/**
 * `switchyard audit verify [--data DIR] [--key FILE]`: walk the audit chain, check it against the head, exit 1 naming
 * the first broken record or what is missing.
 */
import { existsSync } from 'node:fs';
import { hasAuditTable, verifyChain } from '../stores/sqlite/audit/verify.js';
import { databasePath, openDatabaseReadOnly } from './db.js';
import { defaultAuditKeyPath, loadAuditKey } from './head.js';
import type { VerifyResult } from './chain.js';

export interface VerifyOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: VerifyOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/**
 * Returns the process exit code: 0 when the chain verifies, 1 when it is broken or cannot be read. The key is `keyFile`,
 * else `<dataDir>/keys/audit-hmac.key` when present.
 */
export function runAuditVerify(dataDir: string, io: VerifyOutput = stdio, opts: { keyFile?: string } = {}): number {
  const file = databasePath(dataDir);
  const keyFile = opts.keyFile ?? defaultAuditKeyPath(dataDir);
  let key: Buffer | undefined;
  if (opts.keyFile !== undefined || existsSync(keyFile)) {
    try {
      key = loadAuditKey(keyFile, { create: false });
    } catch (err) {
      io.err(`${(err as Error).message}; pass --key FILE with the gateway's audit.hmacKeyFile`);
      return 1;
    }
  }
  let db;
  try {
    db = openDatabaseReadOnly(dataDir);
  } catch (err) {
    io.err(`cannot open ${file}: ${(err as Error).message}`);
    return 1;
  }
  if (!db) {
    io.err(`no audit database at ${file}; pass --data DIR pointing at the gateway's data dir (default: dataDir of gateway.yaml)`);
    return 1;
  }
  try {
    if (!hasAuditTable(db)) {
      io.err(`${file} has no audit table; it is not a Switchyard database, or the gateway has never started with it`);
      return 1;
    }
    return printVerifyResult(verifyChain(db, key), io);
  } catch (err) {
    io.err(`cannot verify ${file}: ${(err as Error).message}`);
    return 1;
  } finally {
    db.close();
  }
}

/** Print a verdict as `audit verify` does, for either store; returns the exit code. */
export function printVerifyResult(result: VerifyResult, io: VerifyOutput): number {
  if (result.ok) {
    const from = result.anchor ? ` (from the retention anchor after record ${result.anchor.lastId})` : '';
    const keyed = result.keyed ? ', HMAC-keyed' : ', unkeyed: anyone who can write the database could rewrite it';
    io.out(`ok: ${result.records} records verified${from}${keyed}`);
    return 0;
  }
  if (!result.firstBroken) {
    io.out(`broken: ${result.message}`);
    return 1;
  }
  const { id, workflowId, step } = result.firstBroken;
  io.out(`broken at record ${id} (workflow ${workflowId} step ${step}): ${result.message}`);
  return 1;
}

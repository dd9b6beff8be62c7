/**
 * `switchyard audit verify` against the shared trail in PostgreSQL (store.postgres): the whole chain, every replica's
 * records, from one snapshot; the same verdict lines as the SQLite trail.
 */
import { pino } from 'pino';
import { openPostgres, redactUrl } from '../stores/postgres/pool.js';
import { hasAuditTables, verifyPgChain } from '../stores/postgres/audit/verify.js';
import { loadAuditKey } from './head.js';
import { printVerifyResult, type VerifyOutput } from './verify-cli.js';

const stdio: VerifyOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Exit code: 0 when the shared chain verifies, 1 when it is broken or cannot be read. Runs no migrations. */
export async function runPgAuditVerify(url: string, io: VerifyOutput = stdio, opts: { keyFile?: string } = {}): Promise<number> {
  let key: Buffer | undefined;
  if (opts.keyFile !== undefined) {
    try {
      key = loadAuditKey(opts.keyFile, { create: false });
    } catch (err) {
      io.err(`${(err as Error).message}; pass --key FILE with the file every replica mounts as audit.hmacKeyFile`);
      return 1;
    }
  }
  const where = redactUrl(url);
  let pg;
  try {
    pg = await openPostgres({ url, log: pino({ level: 'silent' }), migrate: false, max: 2 });
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  }
  try {
    if (!(await hasAuditTables(pg))) {
      io.err(`${where} has no audit tables; no gateway has started on it yet, or store.postgres names another database`);
      return 1;
    }
    return printVerifyResult(await verifyPgChain(pg, key), io);
  } catch (err) {
    io.err(`cannot verify the trail at ${where}: ${(err as Error).message}`);
    return 1;
  } finally {
    await pg.close();
  }
}

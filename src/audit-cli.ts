/**
 * `switchyard audit verify [--config FILE] [--data DIR] [--postgres URL] [--key FILE]`: walk the audit hash chain;
 * exit 1 naming the first broken record. The trail is the shared one in PostgreSQL when --postgres is given or
 * gateway.yaml sets store.postgres (and --data is not given), else the SQLite one in the data dir.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatProblem } from './config/index.js';
import { loadGatewayConfig, PACKAGE_GATEWAY_FILE } from './config/gateway.js';

export const AUDIT_USAGE = 'usage: switchyard audit verify [--config FILE] [--data DIR] [--postgres URL] [--key FILE]';

export async function runAuditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') {
    process.stderr.write(`${AUDIT_USAGE}\n`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string' }, data: { type: 'string' }, postgres: { type: 'string' }, key: { type: 'string' } },
  });
  const keyFlag = values.key === undefined ? undefined : resolve(values.key);
  if (values.postgres !== undefined) {
    const { runPgAuditVerify } = await import('./audit/verify-pg-cli.js');
    return runPgAuditVerify(values.postgres, undefined, { keyFile: keyFlag });
  }
  const loaded = loadGatewayConfig(values.config, {}, { fallbackFile: values.config === undefined ? PACKAGE_GATEWAY_FILE : undefined });
  if (loaded.problems.length > 0 && values.data === undefined) {
    for (const p of loaded.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write('fix gateway.yaml, or pass --data DIR or --postgres URL to say which trail to verify\n');
    return 1;
  }
  const { config } = loaded;
  if (values.data === undefined && config.store.postgres !== undefined) {
    const { runPgAuditVerify } = await import('./audit/verify-pg-cli.js');
    return runPgAuditVerify(config.store.postgres, undefined, { keyFile: keyFlag ?? config.audit.hmacKeyFile });
  }
  const { runAuditVerify } = await import('./audit/verify-cli.js');
  if (values.data !== undefined) return runAuditVerify(resolve(values.data), undefined, { keyFile: keyFlag });
  return runAuditVerify(config.dataDir, undefined, { keyFile: keyFlag ?? config.audit.hmacKeyFile });
}

/** `switchyard audit verify [--data DIR]`: walk the audit hash chain; exit 1 naming the first broken record. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataDir } from './config/gateway.js';

export async function runAuditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') {
    process.stderr.write('usage: switchyard audit verify [--data DIR] [--key FILE]\n');
    return 2;
  }
  const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, key: { type: 'string' } } });
  const { runAuditVerify } = await import('./audit/verify-cli.js');
  return runAuditVerify(values.data !== undefined ? resolve(values.data) : defaultDataDir(), undefined, { keyFile: values.key === undefined ? undefined : resolve(values.key) });
}

/** `switchyard keys rotate [--data DIR]`: a new signing key for delegated tokens; the old one verifies until its tokens expire. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataDir } from './config/gateway.js';
import { keysDirOf, rotateKeysIn } from './identity/keys.js';

const USAGE = 'usage: switchyard keys rotate [--data DIR]   (DIR defaults to the dataDir of gateway.yaml)\n';

export async function runKeysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'rotate') {
    process.stderr.write(USAGE);
    return 2;
  }
  // A flag that does not parse is a usage error, reported by the CLI's entry point.
  const { values } = parseArgs({ args: rest, options: { data: { type: 'string' } }, allowPositionals: false });
  const dataDir = values.data !== undefined ? resolve(values.data) : defaultDataDir();
  try {
    const { kid, retired } = await rotateKeysIn(dataDir);
    const old = retired.length > 0 ? `; ${retired.join(', ')} kept for verifying tokens it signed until they expire` : '';
    process.stdout.write(`new signing key ${kid} in ${keysDirOf(dataDir)}${old}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`cannot rotate keys in ${keysDirOf(dataDir)}: ${(err as Error).message}; check that the data dir is writable or pass --data DIR\n`);
    return 1;
  }
}

/**
 * `switchyard keys rotate [--config FILE] [--data DIR] [--postgres URL]`: a new signing key for delegated tokens; the
 * old one verifies until its tokens expire. The keys are the shared ones in PostgreSQL when --postgres is given or
 * gateway.yaml sets store.postgres (and --data is not given), else the files in the data dir.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadGatewayConfig, PACKAGE_GATEWAY_FILE } from './config/gateway.js';
import { generateSigningKey, keysDirOf, rotateKeysIn } from './identity/keys.js';

const USAGE = 'usage: switchyard keys rotate [--config FILE] [--data DIR] [--postgres URL]   (default: store.postgres of gateway.yaml, else its dataDir)\n';

export async function runKeysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'rotate') {
    process.stderr.write(USAGE);
    return 2;
  }
  // A flag that does not parse is a usage error, reported by the CLI's entry point.
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, data: { type: 'string' }, postgres: { type: 'string' } }, allowPositionals: false });
  if (values.postgres !== undefined) return rotateInPostgres(values.postgres);
  let dataDir: string;
  if (values.data !== undefined) dataDir = resolve(values.data);
  else {
    // As before, a gateway.yaml with problems still names its data dir (defaults fill the rest).
    const loaded = loadGatewayConfig(values.config, {}, { fallbackFile: values.config === undefined ? PACKAGE_GATEWAY_FILE : undefined });
    if (loaded.config.store.postgres !== undefined) return rotateInPostgres(loaded.config.store.postgres);
    dataDir = loaded.config.dataDir;
  }
  try {
    const { kid, retired } = await rotateKeysIn(dataDir);
    process.stdout.write(`new signing key ${kid} in ${keysDirOf(dataDir)}${kept(retired)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`cannot rotate keys in ${keysDirOf(dataDir)}: ${(err as Error).message}; check that the data dir is writable or pass --data DIR\n`);
    return 1;
  }
}

function kept(retired: readonly string[]): string {
  return retired.length > 0 ? `; ${retired.join(', ')} kept for verifying tokens it signed until they expire` : '';
}

/** Rotate the shared keys; running replicas re-read them within a second (the CLI has no control bus of its own). */
async function rotateInPostgres(url: string): Promise<number> {
  const [{ pino }, { openPostgres, redactUrl }, { PgKeyStore }, { MemoryControlBus }] = await Promise.all([
    import('pino'),
    import('./stores/postgres/pool.js'),
    import('./stores/postgres/signing-keys.js'),
    import('./stores/memory/bus.js'),
  ]);
  let db: Awaited<ReturnType<typeof openPostgres>> | undefined;
  try {
    db = await openPostgres({ url, log: pino({ level: 'silent' }) });
    const store = await PgKeyStore.open({ db, bus: new MemoryControlBus() });
    const now = Date.now();
    const fresh = await generateSigningKey(now);
    const retired = await store.rotate(fresh, now);
    await store.close();
    process.stdout.write(`new signing key ${fresh.kid} in PostgreSQL at ${db.where}${kept(retired)}; running replicas sign with it within a second\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`cannot rotate keys in PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await db?.close();
  }
}

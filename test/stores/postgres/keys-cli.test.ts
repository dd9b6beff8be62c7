// `switchyard keys rotate` on the shared keys: --postgres URL, or store.postgres of gateway.yaml; a running replica
// signs with the new key within a second; an unreachable server is a clear error and exit 1.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { GatewayKeys } from '../../../src/identity/keys.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgKeyStore } from '../../../src/stores/postgres/signing-keys.js';
import { CLI, requireBuild } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/shared-stores.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { dropPgDatabases, pgFor, pgUnavailable, pgUrlFor } from './databases.js';

const run = promisify(execFile);
if (pgUnavailable) console.log(`skipping keys rotate on PostgreSQL: ${pgUnavailable}`);

const stores: PgKeyStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  removeStoreDirs();
});
afterAll(dropPgDatabases);

describe.skipIf(pgUnavailable)('switchyard keys rotate on PostgreSQL', () => {
  it('--postgres rotates the shared keys and a running replica signs with the new one within a second', async () => {
    requireBuild();
    const dir = storeDir();
    const store = await PgKeyStore.open({ db: await pgFor(dir), bus: new MemoryControlBus() });
    stores.push(store);
    const keys = await GatewayKeys.openStore(store);
    const before = keys.current()!.kid;
    const { stdout } = await run(process.execPath, [CLI, 'keys', 'rotate', '--postgres', await pgUrlFor(dir)], { encoding: 'utf8' });
    const kid = /new signing key (\S+) in PostgreSQL at /.exec(stdout)?.[1];
    expect(kid).toBeTruthy();
    expect(stdout).toContain(`${before} kept for verifying tokens it signed`);
    await vi.waitFor(() => expect((keys.refresh(), keys.current()?.kid)).toBe(kid), { timeout: 1000, interval: 10 });
  });

  it("without flags it rotates the keys of gateway.yaml's store.postgres", async () => {
    requireBuild();
    const dir = storeDir();
    const url = await pgUrlFor(dir);
    writeFileSync(join(dir, 'gateway.yaml'), `dataDir: ${join(dir, 'data')}\nstore:\n  postgres: ${url}\n`);
    const { stdout } = await run(process.execPath, [CLI, 'keys', 'rotate', '--config', join(dir, 'gateway.yaml')], { encoding: 'utf8', cwd: dir });
    expect(stdout).toMatch(/new signing key \S+ in PostgreSQL at /);
    const db = await pgFor(dir);
    expect((await db.query('SELECT kid FROM signing_keys')).rowCount).toBe(1);
  });

  it('an unreachable server is one clear line and exit 1, with no password shown', async () => {
    requireBuild();
    const port = await freePort();
    const err = await run(process.execPath, [CLI, 'keys', 'rotate', '--postgres', `postgres://postgres:hunter2@127.0.0.1:${port}/x`], { encoding: 'utf8' }).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 1 });
    const stderr = (err as { stderr: string }).stderr;
    expect(stderr).toMatch(/cannot rotate keys in PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/x: cannot reach PostgreSQL/);
    expect(stderr).not.toContain('hunter2');
  });
});

// Signing keys in the shared PostgreSQL store, as replicas see them: two starting at once create one key, a token
// signed on one verifies on the other, and after a rotation on one the other signs with the new key and still
// verifies tokens of the old one, at once over the bus and within a second without it.
import { decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { JwtVerifier } from '../../../src/identity/jwt.js';
import { GatewayKeys } from '../../../src/identity/keys.js';
import type { ControlBus } from '../../../src/stores/bus.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgKeyStore } from '../../../src/stores/postgres/signing-keys.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { dropPgDatabases, pgFor, pgUnavailable } from './databases.js';

if (pgUnavailable) console.log(`skipping PostgreSQL signing key tests: ${pgUnavailable}`);

const ISSUER = 'http://gw.test';

class DeafBus implements ControlBus {
  readonly replicaId = 'deaf';
  publish(): void {}
  subscribe(): () => void {
    return () => {};
  }
  close(): void {}
}

const stores: PgKeyStore[] = [];
async function replica(dir: string, bus: ControlBus, opts: { now?: () => number; maxTokenSeconds?: number } = {}): Promise<GatewayKeys> {
  const store = await PgKeyStore.open({ db: await pgFor(dir), bus });
  stores.push(store);
  return GatewayKeys.openStore(store, opts);
}
function verifierFor(keys: GatewayKeys): JwtVerifier {
  const v = new JwtVerifier([], { cacheSize: 1 });
  v.addLocalIssuer(ISSUER, () => keys.publicJwks(), { algorithms: ['ES256'] });
  return v;
}
const claims = () => ({ iss: ISSUER, aud: ISSUER, sub: 'child', exp: Math.floor(Date.now() / 1000) + 600 });

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  removeStoreDirs();
});
afterAll(dropPgDatabases);

describe.skipIf(pgUnavailable)('signing keys on PostgreSQL', () => {
  it('five replicas starting at once create one key between them and all sign with it', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const replicas = await Promise.all([1, 2, 3, 4, 5].map(() => replica(dir, bus)));
    const kids = new Set(replicas.map((r) => r.current()?.kid));
    expect(kids.size).toBe(1);
    expect([...kids][0]).toBeTruthy();
    expect(replicas.every((r) => r.publicJwks().keys.length === 1)).toBe(true);
    expect(replicas[0]!.publicJwks().keys[0]).not.toHaveProperty('d');
  });

  it('a token signed on one replica verifies on another; after a rotation there the other signs with the new key', async () => {
    const dir = storeDir();
    const bus = new MemoryControlBus();
    const a = await replica(dir, bus);
    const b = await replica(dir, bus);
    const old = await a.sign(claims());
    expect(await verifierFor(b).verify(old)).toMatchObject({ ok: true });
    const newKid = await a.rotate();
    await vi.waitFor(() => expect((b.refresh(), b.current()?.kid)).toBe(newKid), { timeout: 1000, interval: 5 });
    const fresh = await b.sign(claims());
    expect(decodeProtectedHeader(fresh).kid).toBe(newKid);
    const onA = verifierFor(a);
    expect((await onA.verify(fresh)).ok).toBe(true);
    expect((await verifierFor(b).verify(old)).ok).toBe(true); // the retired key stays published
  });

  it('without the bus, a rotation reaches the other replica by the periodic re-read within 1 s', async () => {
    const dir = storeDir();
    const a = await replica(dir, new DeafBus());
    const b = await replica(dir, new DeafBus());
    const t0 = performance.now();
    const newKid = await a.rotate();
    await vi.waitFor(() => expect((b.refresh(), b.current()?.kid)).toBe(newKid), { timeout: 1500, interval: 10 });
    const ms = performance.now() - t0;
    console.log(`rotation seen on the other replica by re-read after ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(1000);
    expect((await verifierFor(b).verify(await a.sign(claims()))).ok).toBe(true);
  });

  it('a retired key past its tokens’ lifetime is removed from the shared store, once', async () => {
    const dir = storeDir();
    let now = Date.now();
    const bus = new MemoryControlBus();
    const a = await replica(dir, bus, { now: () => now, maxTokenSeconds: 60 });
    const b = await replica(dir, bus, { now: () => now, maxTokenSeconds: 60 });
    const first = a.current()!.kid;
    const second = await a.rotate();
    expect(a.publicJwks().keys.map((k) => k.kid).sort()).toEqual([first, second].sort());
    now += 61_000;
    expect(a.publicJwks().keys.map((k) => k.kid)).toEqual([second]);
    await vi.waitFor(() => expect(b.publicJwks().keys.map((k) => k.kid)).toEqual([second]), { timeout: 1000, interval: 10 });
    const db = await pgFor(dir);
    await vi.waitFor(async () => expect((await db.query('SELECT kid FROM signing_keys')).rows).toEqual([{ kid: second }]), { timeout: 1000, interval: 10 });
  });
});

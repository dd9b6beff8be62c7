import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { JwtVerifier } from '../../src/identity/jwt.js';
import { GatewayKeys, keysDirOf, rotateKeysIn } from '../../src/identity/keys.js';

const ISSUER = 'http://gw.test';
const dirs: string[] = [];
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-keys-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function verifierFor(keys: GatewayKeys, now: () => number): JwtVerifier {
  const v = new JwtVerifier([], { now, cacheSize: 1 });
  v.addLocalIssuer(ISSUER, () => keys.publicJwks(), { algorithms: ['ES256'] });
  return v;
}

describe('gateway signing keys', () => {
  it('creates one ES256 key on first start, private file readable by the owner only, and reuses it on the next start', async () => {
    const data = dataDir();
    const first = await GatewayKeys.open(data);
    const files = readdirSync(keysDirOf(data));
    expect(files).toHaveLength(1);
    expect(statSync(join(keysDirOf(data), files[0]!)).mode & 0o077).toBe(0);
    expect(first.publicJwks().keys).toHaveLength(1);
    expect(first.publicJwks().keys[0]).not.toHaveProperty('d');
    const again = await GatewayKeys.open(data);
    expect(again.current()?.kid).toBe(first.current()?.kid);
  });

  it('signs with the current kid; after rotation new tokens use the new key and old tokens still verify', async () => {
    let now = Date.now();
    const keys = await GatewayKeys.open(dataDir(), { maxTokenSeconds: 600, now: () => now });
    const oldKid = keys.current()!.kid;
    const exp = Math.floor(now / 1000) + 600;
    const oldToken = await keys.sign({ iss: ISSUER, aud: ISSUER, sub: 'a', exp });
    expect(decodeProtectedHeader(oldToken)).toMatchObject({ alg: 'ES256', kid: oldKid });

    const newKid = await keys.rotate();
    expect(newKid).not.toBe(oldKid);
    const newToken = await keys.sign({ iss: ISSUER, aud: ISSUER, sub: 'a', exp });
    expect(decodeProtectedHeader(newToken).kid).toBe(newKid);
    expect(keys.publicJwks().keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());

    const verifier = verifierFor(keys, () => now);
    expect((await verifier.verify(oldToken)).ok).toBe(true);
    expect((await verifier.verify(newToken)).ok).toBe(true);

    // Past the longest token lifetime the retired key is dropped from disk and from the JWKS.
    now += 601_000;
    expect(keys.publicJwks().keys.map((k) => k.kid)).toEqual([newKid]);
    expect(readdirSync(keys.dir)).toEqual([`${newKid}.json`]);
  });

  it('picks up a rotation done by the CLI in the same data dir without a restart', async () => {
    const data = dataDir();
    const keys = await GatewayKeys.open(data);
    const before = keys.current()!.kid;
    const { kid, retired } = await rotateKeysIn(data);
    expect(retired).toEqual([before]);
    const token = await keys.sign({ iss: ISSUER, aud: ISSUER, exp: Math.floor(Date.now() / 1000) + 60 });
    expect(decodeProtectedHeader(token).kid).toBe(kid);
    expect(keys.publicJwks().keys).toHaveLength(2);
  });

  it('a token signed by a key the gateway never had is refused as unknown_key', async () => {
    const keys = await GatewayKeys.open(dataDir());
    const stranger = await GatewayKeys.open(dataDir());
    const forged = await stranger.sign({ iss: ISSUER, aud: ISSUER, sub: 'a', exp: Math.floor(Date.now() / 1000) + 60 });
    const result = await verifierFor(keys, Date.now).verify(forged);
    expect(result).toMatchObject({ ok: false, error: 'unknown_key' });
  });
});

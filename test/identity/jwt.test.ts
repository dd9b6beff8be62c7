import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportSPKI, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwtVerifier } from '../../src/identity/jwt.js';
import { AUDIENCE, b64url, ISSUER, jwks, makeKey, sign, writeJwksFile, type TestKey } from './helpers.js';

describe('JwtVerifier', () => {
  let key1: TestKey;
  let otherKey: TestKey;
  let jwksFile: string;
  let nowMs: number;
  let verifier: JwtVerifier;
  const nowSec = () => Math.floor(nowMs / 1000);

  beforeAll(async () => {
    key1 = await makeKey('k1');
    otherKey = await makeKey('k1'); // same kid, different key material
    jwksFile = await writeJwksFile(key1);
  });

  function freshVerifier() {
    nowMs = Date.now();
    verifier = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile }], { now: () => nowMs });
    return verifier;
  }

  it('accepts a valid token and returns its claims', async () => {
    freshVerifier();
    const r = await verifier.verify(await sign({ sub: 'svc-a' }, { key: key1, nowSec: nowSec() }));
    expect(r).toMatchObject({ ok: true, issuer: ISSUER, local: false, claims: { sub: 'svc-a' } });
  });

  it.each([
    ['expired beyond the 30 s tolerance', { exp: -60 }, 'expired'],
    ['not yet valid', { nbf: 120 }, 'not_yet_valid'],
  ])('refuses a token %s', async (_label, offsets, error) => {
    freshVerifier();
    const claims = Object.fromEntries(Object.entries(offsets).map(([k, v]) => [k, nowSec() + v]));
    const r = await verifier.verify(await sign({ sub: 'svc-a', ...claims }, { key: key1, nowSec: nowSec() }));
    expect(r).toMatchObject({ ok: false, error });
  });

  it('tolerates 30 s of clock skew on exp and nbf', async () => {
    freshVerifier();
    const expiredRecently = await sign({ sub: 'a', exp: nowSec() - 10 }, { key: key1, nowSec: nowSec() });
    const startsSoon = await sign({ sub: 'a', nbf: nowSec() + 10 }, { key: key1, nowSec: nowSec() });
    expect((await verifier.verify(expiredRecently)).ok).toBe(true);
    expect((await verifier.verify(startsSoon)).ok).toBe(true);
  });

  it('refuses an untrusted issuer and a wrong audience', async () => {
    freshVerifier();
    const wrongIss = await verifier.verify(await sign({ sub: 'a', iss: 'https://evil.test' }, { key: key1, nowSec: nowSec() }));
    const wrongAud = await verifier.verify(await sign({ sub: 'a', aud: 'https://other.test' }, { key: key1, nowSec: nowSec() }));
    expect(wrongIss).toMatchObject({ ok: false, error: 'wrong_issuer' });
    expect(wrongAud).toMatchObject({ ok: false, error: 'wrong_audience' });
  });

  it('refuses a token signed by another key under a known kid, and an unknown kid', async () => {
    freshVerifier();
    expect(await verifier.verify(await sign({ sub: 'a' }, { key: otherKey, nowSec: nowSec() }))).toMatchObject({ ok: false, error: 'bad_signature' });
    expect(await verifier.verify(await sign({ sub: 'a' }, { key: otherKey, kid: 'nope', nowSec: nowSec() }))).toMatchObject({
      ok: false,
      error: 'unknown_key',
    });
  });

  it('refuses alg none', async () => {
    freshVerifier();
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: ISSUER, aud: AUDIENCE, sub: 'a', exp: nowSec() + 60 })}.`;
    expect(await verifier.verify(token)).toMatchObject({ ok: false, error: 'unsupported_alg' });
  });

  it('refuses HS256 signed with the public key as the HMAC secret (algorithm confusion)', async () => {
    freshVerifier();
    const secret = new TextEncoder().encode(await exportSPKI(key1.publicKey));
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'a', exp: nowSec() + 60 })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .sign(secret);
    expect(await verifier.verify(token)).toMatchObject({ ok: false, error: 'unsupported_alg' });
  });

  it('refuses garbage, a tampered payload and a token without exp', async () => {
    freshVerifier();
    expect(await verifier.verify('abc.def.ghi')).toMatchObject({ ok: false, error: 'malformed' });
    const good = await sign({ sub: 'svc-a' }, { key: key1, nowSec: nowSec() });
    const [h, , s] = good.split('.');
    const tampered = `${h}.${b64url({ iss: ISSUER, aud: AUDIENCE, sub: 'admin', exp: nowSec() + 3600 })}.${s}`;
    expect(await verifier.verify(tampered)).toMatchObject({ ok: false, error: 'bad_signature' });
    expect(await verifier.verify(await sign({ sub: 'a' }, { key: key1, nowSec: nowSec(), ttlSec: null }))).toMatchObject({
      ok: false,
      error: 'malformed',
    });
  });

  it('picks up a rotated key appended to the JWKS file without a restart, re-reading at most once per 5 s', async () => {
    const file = await writeJwksFile(key1);
    nowMs = Date.now();
    const v = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: file }], { now: () => nowMs });
    expect((await v.verify(await sign({ sub: 'a' }, { key: key1, nowSec: nowSec() }))).ok).toBe(true);

    const key2 = await makeKey('k2');
    const rotated = await sign({ sub: 'a' }, { key: key2, nowSec: nowSec() });
    await writeFile(file, JSON.stringify(jwks(key1, key2)));
    nowMs += 1_000;
    expect(await v.verify(rotated)).toMatchObject({ ok: false, error: 'unknown_key' }); // within 5 s of the last read
    nowMs += 5_000;
    expect(await v.verify(rotated)).toMatchObject({ ok: true });
    expect((await v.verify(await sign({ sub: 'b' }, { key: key1, nowSec: nowSec() }))).ok).toBe(true);
  });

  it('keeps the last good key set when the JWKS file is half-written', async () => {
    const file = await writeJwksFile(key1);
    nowMs = Date.now();
    const v = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: file }], { now: () => nowMs });
    expect((await v.verify(await sign({ sub: 'a' }, { key: key1, nowSec: nowSec() }))).ok).toBe(true);
    await writeFile(file, '{"keys": [');
    nowMs += 6_000;
    const unknownKid = await sign({ sub: 'a' }, { key: otherKey, kid: 'k9', nowSec: nowSec() });
    expect(await v.verify(unknownKid)).toMatchObject({ ok: false, error: 'unknown_key' });
    expect((await v.verify(await sign({ sub: 'c' }, { key: key1, nowSec: nowSec() }))).ok).toBe(true);
  });

  it('reports an unreadable JWKS file with the path to fix', async () => {
    nowMs = Date.now();
    const v = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: '/nonexistent/jwks.json' }], { now: () => nowMs });
    const r = await v.verify(await sign({ sub: 'a' }, { key: key1, nowSec: nowSec() }));
    expect(r).toMatchObject({ ok: false, error: 'unknown_key' });
    expect(!r.ok && r.message).toContain('/nonexistent/jwks.json');
  });

  it('verifies a token without kid against a set holding several keys of its type', async () => {
    const key2 = await makeKey('k2');
    const file = await writeJwksFile(key1, key2);
    nowMs = Date.now();
    const v = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: file }], { now: () => nowMs });
    expect((await v.verify(await sign({ sub: 'a' }, { key: key2, kid: null, nowSec: nowSec() }))).ok).toBe(true);
  });

  it('serves a repeated token from the cache synchronously until it expires', async () => {
    freshVerifier();
    const token = await sign({ sub: 'a' }, { key: key1, nowSec: nowSec(), ttlSec: 60 });
    expect(verifier.cached(token)).toBeUndefined();
    const first = await verifier.verify(token);
    expect(verifier.cached(token)).toBe(first);
    nowMs += 61_000;
    expect(verifier.cached(token)).toBeUndefined();
    nowMs += 60_000;
    expect(await verifier.verify(token)).toMatchObject({ ok: false, error: 'expired' });
  });

  it('refuses HMAC and none in the configured algorithms, and an issuer without a key source', () => {
    expect(() => new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile, algorithms: ['HS256'] }])).toThrow(/HS256 is not allowed/);
    expect(() => new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile, algorithms: ['none'] }])).toThrow(/not allowed/);
    expect(() => new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE }])).toThrow(/jwksUri or jwksFile/);
  });

  it('honours a configured algorithm allow-list', async () => {
    nowMs = Date.now();
    const es = await makeKey('e1', 'ES256');
    const file = await writeJwksFile(key1, es);
    const v = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile: file, algorithms: ['ES256'] }], { now: () => nowMs });
    expect((await v.verify(await sign({ sub: 'a' }, { key: es, nowSec: nowSec() }))).ok).toBe(true);
    expect(await v.verify(await sign({ sub: 'a' }, { key: key1, nowSec: nowSec() }))).toMatchObject({ ok: false, error: 'unsupported_alg' });
  });

  it('trusts a gateway-minted issuer through addLocalIssuer, with the issuer as default audience', async () => {
    freshVerifier();
    const minting = await makeKey('gw1', 'ES256');
    verifier.addLocalIssuer('https://gw.test', () => jwks(minting));
    const token = await sign({ iss: 'https://gw.test', aud: 'https://gw.test', sub: 'child' }, { key: minting, nowSec: nowSec() });
    expect(await verifier.verify(token)).toMatchObject({ ok: true, local: true, issuer: 'https://gw.test' });
    expect(verifier.isLocalIssuer('https://gw.test')).toBe(true);
    expect(verifier.configuredIssuerCount).toBe(1);
  });

  describe('with a jwksUri', () => {
    let server: Server;
    let served: TestKey[];
    let fetches = 0;
    beforeAll(async () => {
      served = [key1];
      server = createServer((_req, res) => {
        fetches++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks(...served)));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('fetches the key set once and refetches for a new kid after the cooldown', async () => {
      const { port } = server.address() as AddressInfo;
      nowMs = Date.now();
      const v = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksUri: `http://127.0.0.1:${port}/jwks.json` }], { jwksUriCooldownMs: 0 });
      expect((await v.verify(await sign({ sub: 'a' }, { key: key1, nowSec: nowSec() }))).ok).toBe(true);
      expect((await v.verify(await sign({ sub: 'b' }, { key: key1, nowSec: nowSec() }))).ok).toBe(true);
      expect(fetches).toBe(1);
      const key3 = await makeKey('k3');
      served = [key1, key3];
      expect((await v.verify(await sign({ sub: 'c' }, { key: key3, nowSec: nowSec() }))).ok).toBe(true);
      expect(fetches).toBe(2);
    });
  });
});

/**
 * The gateway's own ES256 signing keys for delegated tokens: one JSON file per key in `<dataDir>/keys/`,
 * created on first start, rotated on command; a retired key stays published until its tokens have expired.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';

export const SIGNING_ALGORITHM = 'ES256';
const KEY_FILE = /^[A-Za-z0-9_-]+\.json$/;

/** What one key file holds. `retiredAt` is set when a newer key took over signing. */
export interface StoredSigningKey {
  kid: string;
  alg: typeof SIGNING_ALGORITHM;
  createdAt: number;
  retiredAt?: number;
  privateJwk: JWK;
  publicJwk: JWK;
}

export interface GatewayKeysOptions {
  /** Longest lifetime of a minted token (gateway.yaml delegation.maxTokenSeconds): how long a retired key stays published. */
  maxTokenSeconds?: number;
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number;
}

export function keysDirOf(dataDir: string): string {
  return join(resolve(dataDir), 'keys');
}

function newKid(now: number): string {
  return `${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(6).toString('base64url')}`;
}

/** Write via a temp file and rename, so a reader never sees half a key. */
function writeKeyFile(dir: string, key: StoredSigningKey): void {
  const file = join(dir, `${key.kid}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(key, null, 2), { mode: 0o600 });
  renameSync(tmp, file);
}

async function generateSigningKey(now: number): Promise<StoredSigningKey> {
  const kid = newKid(now);
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const base = { kid, alg: SIGNING_ALGORITHM, use: 'sig' };
  return {
    kid,
    alg: SIGNING_ALGORITHM,
    createdAt: now,
    privateJwk: { ...(await exportJWK(privateKey)), ...base },
    publicJwk: { ...(await exportJWK(publicKey)), ...base },
  };
}

function readKeyFiles(dir: string): StoredSigningKey[] {
  const keys: StoredSigningKey[] = [];
  for (const name of readdirSync(dir)) {
    if (!KEY_FILE.test(name)) continue;
    try {
      const k = JSON.parse(readFileSync(join(dir, name), 'utf8')) as StoredSigningKey;
      if (typeof k.kid === 'string' && k.alg === SIGNING_ALGORITHM && k.privateJwk && k.publicJwk && typeof k.createdAt === 'number') keys.push(k);
    } catch {
      // A foreign or half-copied file must not stop the gateway; it is simply not a key.
    }
  }
  return keys.sort((a, b) => b.createdAt - a.createdAt);
}

/** Rotate the keys in a data dir without a running gateway (the CLI): retire every current key and add a new one. */
export async function rotateKeysIn(dataDir: string, now = Date.now()): Promise<{ kid: string; retired: string[] }> {
  const dir = keysDirOf(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fresh = await generateSigningKey(now);
  // The new key first: a gateway reading in between then still has a current key to sign with.
  writeKeyFile(dir, fresh);
  const retired: string[] = [];
  for (const k of readKeyFiles(dir)) {
    if (k.kid === fresh.kid || k.retiredAt !== undefined) continue;
    writeKeyFile(dir, { ...k, retiredAt: now });
    retired.push(k.kid);
  }
  return { kid: fresh.kid, retired };
}

export class GatewayKeys {
  readonly dir: string;
  readonly #maxTokenMs: number;
  readonly #now: () => number;
  #keys: StoredSigningKey[] = [];
  #jwks: JSONWebKeySet = { keys: [] };
  #dirMtimeMs = -1;
  readonly #privateKeys = new Map<string, Promise<CryptoKey | Uint8Array>>();

  private constructor(dataDir: string, opts: GatewayKeysOptions) {
    this.dir = keysDirOf(dataDir);
    this.#maxTokenMs = (opts.maxTokenSeconds ?? 3600) * 1000;
    this.#now = opts.now ?? Date.now;
  }

  /** Load `<dataDir>/keys/`, creating the first key when there is none. */
  static async open(dataDir: string, opts: GatewayKeysOptions = {}): Promise<GatewayKeys> {
    const keys = new GatewayKeys(dataDir, opts);
    mkdirSync(keys.dir, { recursive: true, mode: 0o700 });
    try {
      chmodSync(keys.dir, 0o700);
    } catch {
      // Not ours to fix on a read-only or foreign-owned mount; the key files themselves are 0600.
    }
    keys.refresh();
    if (!keys.current()) {
      writeKeyFile(keys.dir, await generateSigningKey(keys.#now()));
      keys.refresh(true);
    }
    return keys;
  }

  /** Re-read the directory when it changed (e.g. `switchyard keys rotate` in another process); drops keys past their time. */
  refresh(force = false): void {
    let mtime: number;
    try {
      mtime = statSync(this.dir).mtimeMs;
    } catch {
      return;
    }
    if (!force && mtime === this.#dirMtimeMs) {
      this.#dropExpired();
      return;
    }
    this.#dirMtimeMs = mtime;
    this.#keys = readKeyFiles(this.dir);
    this.#dropExpired(true);
  }

  #dropExpired(rebuild = false): void {
    const now = this.#now();
    const expired = this.#keys.filter((k) => k.retiredAt !== undefined && k.retiredAt + this.#maxTokenMs < now);
    for (const k of expired) {
      try {
        unlinkSync(join(this.dir, `${k.kid}.json`));
      } catch {
        // Already removed by another process.
      }
      this.#privateKeys.delete(k.kid);
    }
    if (expired.length > 0) {
      this.#keys = this.#keys.filter((k) => !expired.includes(k));
      this.#dirMtimeMs = statSync(this.dir).mtimeMs;
      rebuild = true;
    }
    // A new object only when the set changed: the verifier rebuilds its key lookup on a new object.
    if (rebuild) this.#jwks = { keys: this.#keys.map((k) => ({ ...k.publicJwk })) };
  }

  /** The key that signs new tokens: the newest one not retired. */
  current(): StoredSigningKey | undefined {
    return this.#keys.find((k) => k.retiredAt === undefined);
  }

  /** Every key whose tokens may still be alive, for `/.well-known/jwks.json` and for verifying minted tokens. */
  publicJwks(): JSONWebKeySet {
    this.refresh();
    return this.#jwks;
  }

  /** Start signing with a new key; the old one stays published for `maxTokenSeconds`, then is dropped. */
  async rotate(): Promise<string> {
    const { kid } = await rotateKeysIn(resolve(this.dir, '..'), this.#now());
    this.refresh(true);
    return kid;
  }

  /** Sign claims as an ES256 JWT with the current key (`kid` in the header). */
  async sign(claims: JWTPayload): Promise<string> {
    this.refresh();
    const key = this.current();
    if (!key) throw new Error(`no signing key in ${this.dir}; restart the gateway or run \`switchyard keys rotate\` to create one`);
    let privateKey = this.#privateKeys.get(key.kid);
    if (!privateKey) {
      privateKey = importJWK(key.privateJwk, SIGNING_ALGORITHM);
      this.#privateKeys.set(key.kid, privateKey);
    }
    return new SignJWT(claims).setProtectedHeader({ alg: SIGNING_ALGORITHM, typ: 'JWT', kid: key.kid }).sign(await privateKey);
  }
}

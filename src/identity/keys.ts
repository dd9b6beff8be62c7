/**
 * The gateway's own ES256 signing keys for delegated tokens, kept in a KeyStore (files in `<dataDir>/keys/` by
 * default, the shared store for replicas): created on first start, rotated on command; a retired key stays published
 * until its tokens have expired.
 */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';
import { FileKeyStore, SIGNING_ALGORITHM, type KeyStore, type StoredSigningKey } from './key-store.js';

export { SIGNING_ALGORITHM, FileKeyStore, type KeyStore, type StoredSigningKey } from './key-store.js';

export interface GatewayKeysOptions {
  /** Longest lifetime of a minted token (gateway.yaml delegation.maxTokenSeconds): how long a retired key stays published. */
  maxTokenSeconds?: number;
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number;
  /** Called when forgetting an expired key failed (a shared store that is down); it is tried again later. */
  onError?: (err: Error) => void;
}

export function keysDirOf(dataDir: string): string {
  return join(resolve(dataDir), 'keys');
}

function newKid(now: number): string {
  return `${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(6).toString('base64url')}`;
}

/** A fresh ES256 key pair as stored. */
export async function generateSigningKey(now: number): Promise<StoredSigningKey> {
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

/** Rotate the keys in a data dir without a running gateway (the CLI): retire every current key and add a new one. */
export async function rotateKeysIn(dataDir: string, now = Date.now()): Promise<{ kid: string; retired: string[] }> {
  const fresh = await generateSigningKey(now);
  const retired = await new FileKeyStore(keysDirOf(dataDir)).rotate(fresh, now);
  return { kid: fresh.kid, retired };
}

export class GatewayKeys {
  readonly store: KeyStore;
  readonly #maxTokenMs: number;
  readonly #now: () => number;
  readonly #onError: (err: Error) => void;
  #keys: StoredSigningKey[] = [];
  #seen: readonly StoredSigningKey[] | undefined;
  #jwks: JSONWebKeySet = { keys: [] };
  readonly #privateKeys = new Map<string, Promise<CryptoKey | Uint8Array>>();
  /** Kids whose removal was asked of the store and not yet seen done, so a shared store is asked once. */
  readonly #removing = new Set<string>();

  private constructor(store: KeyStore, opts: GatewayKeysOptions) {
    this.store = store;
    this.#maxTokenMs = (opts.maxTokenSeconds ?? 3600) * 1000;
    this.#now = opts.now ?? Date.now;
    this.#onError = opts.onError ?? (() => {});
  }

  /** Load `<dataDir>/keys/`, creating the first key when there is none. */
  static async open(dataDir: string, opts: GatewayKeysOptions = {}): Promise<GatewayKeys> {
    return GatewayKeys.openStore(FileKeyStore.open(keysDirOf(dataDir)), opts);
  }

  /** Sign and publish over any key store, creating the first key when there is none. */
  static async openStore(store: KeyStore, opts: GatewayKeysOptions = {}): Promise<GatewayKeys> {
    const keys = new GatewayKeys(store, opts);
    await store.createFirst(() => generateSigningKey(keys.#now()));
    keys.refresh(true);
    return keys;
  }

  /** Where the keys are kept (a directory for the file store). */
  get dir(): string {
    return this.store.where;
  }

  /** Pick up changes made elsewhere (`switchyard keys rotate`, another replica); drops keys past their time. */
  refresh(force = false): void {
    this.store.refresh(force);
    const listed = this.store.list();
    let rebuild = false;
    if (listed !== this.#seen) {
      this.#seen = listed;
      this.#keys = [...listed];
      rebuild = true;
    }
    const now = this.#now();
    const expired = this.#keys.filter((k) => k.retiredAt !== undefined && k.retiredAt + this.#maxTokenMs < now);
    if (expired.length > 0) {
      for (const k of expired) this.#privateKeys.delete(k.kid);
      this.#keys = this.#keys.filter((k) => !expired.includes(k));
      rebuild = true;
      const kids = expired.map((k) => k.kid).filter((kid) => !this.#removing.has(kid));
      if (kids.length > 0) {
        for (const kid of kids) this.#removing.add(kid);
        const forget = (err?: Error) => {
          for (const kid of kids) this.#removing.delete(kid);
          if (err) this.#onError(err);
        };
        try {
          const removed = this.store.remove(kids);
          if (removed instanceof Promise) removed.then(() => forget(), forget);
          else forget();
        } catch (err) {
          forget(err as Error);
        }
      }
      if (this.store.list() !== listed) this.#seen = this.store.list();
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
    const now = this.#now();
    const fresh = await generateSigningKey(now);
    await this.store.rotate(fresh, now);
    this.refresh(true);
    return fresh.kid;
  }

  /** Sign claims as an ES256 JWT with the current key (`kid` in the header). */
  async sign(claims: JWTPayload): Promise<string> {
    this.refresh();
    const key = this.current();
    if (!key) throw new Error(`no signing key in ${this.store.where}; restart the gateway or run \`switchyard keys rotate\` to create one`);
    let privateKey = this.#privateKeys.get(key.kid);
    if (!privateKey) {
      privateKey = importJWK(key.privateJwk, SIGNING_ALGORITHM);
      this.#privateKeys.set(key.kid, privateKey);
    }
    return new SignJWT(claims).setProtectedHeader({ alg: SIGNING_ALGORITHM, typ: 'JWT', kid: key.kid }).sign(await privateKey);
  }
}

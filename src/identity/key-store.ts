/**
 * Where the gateway's signing keys are kept: files in `<dataDir>/keys/` (one process, the default) or the shared
 * PostgreSQL store (replicas, src/stores/postgres/signing-keys.ts). GatewayKeys signs and publishes over either.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import type { Awaitable } from '../stores/types.js';

export const SIGNING_ALGORITHM = 'ES256';

/** What one key holds. `retiredAt` is set when a newer key took over signing. */
export interface StoredSigningKey {
  kid: string;
  alg: typeof SIGNING_ALGORITHM;
  createdAt: number;
  retiredAt?: number;
  privateJwk: JWK;
  publicJwk: JWK;
}

export interface KeyStore {
  /** Where the keys are, for messages ("in /data/keys", "in PostgreSQL at …"). */
  readonly where: string;
  /** The keys, newest first; the same array until the set changes, so callers rebuild only then. */
  list(): readonly StoredSigningKey[];
  /** Pick up changes made elsewhere (a CLI rotation, another replica); cheap when nothing changed. */
  refresh(force?: boolean): void;
  /** Create a key when none signs yet; replicas starting at once create one between them, not one each. */
  createFirst(generate: () => Promise<StoredSigningKey>): Promise<void>;
  /** Add `fresh` and retire every other current key at `now`; returns the retired kids. */
  rotate(fresh: StoredSigningKey, now: number): Promise<string[]>;
  /** Forget keys whose tokens have all expired. */
  remove(kids: readonly string[]): Awaitable<void>;
  close(): Awaitable<void>;
}

const KEY_FILE = /^[A-Za-z0-9_-]+\.json$/;

/** A stored key as read from a file or a row: the fields verification and signing rely on, or undefined. */
export function asSigningKey(v: unknown): StoredSigningKey | undefined {
  const k = v as Partial<StoredSigningKey> | null;
  if (!k || typeof k !== 'object') return undefined;
  if (typeof k.kid !== 'string' || k.alg !== SIGNING_ALGORITHM || !k.privateJwk || !k.publicJwk || typeof k.createdAt !== 'number') return undefined;
  return k as StoredSigningKey;
}

/** Keys as files in one directory, 0600 each, written via a temp file and rename so a reader never sees half a key. */
export class FileKeyStore implements KeyStore {
  readonly where: string;
  #keys: readonly StoredSigningKey[] = [];
  #mtimeMs = -1;

  constructor(readonly dir: string) {
    this.where = dir;
  }

  /** Create the directory (0700) and read it. */
  static open(dir: string): FileKeyStore {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      chmodSync(dir, 0o700);
    } catch {
      // Not ours to fix on a read-only or foreign-owned mount; the key files themselves are 0600.
    }
    const store = new FileKeyStore(dir);
    store.refresh(true);
    return store;
  }

  list(): readonly StoredSigningKey[] {
    return this.#keys;
  }

  refresh(force = false): void {
    let mtime: number;
    try {
      mtime = statSync(this.dir).mtimeMs;
    } catch {
      return;
    }
    if (!force && mtime === this.#mtimeMs) return;
    this.#mtimeMs = mtime;
    this.#keys = this.#read();
  }

  async createFirst(generate: () => Promise<StoredSigningKey>): Promise<void> {
    this.refresh(true);
    if (this.#keys.some((k) => k.retiredAt === undefined)) return;
    this.#write(await generate());
    this.refresh(true);
  }

  async rotate(fresh: StoredSigningKey, now: number): Promise<string[]> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // The new key first: a gateway reading in between then still has a current key to sign with.
    this.#write(fresh);
    const retired: string[] = [];
    for (const k of this.#read()) {
      if (k.kid === fresh.kid || k.retiredAt !== undefined) continue;
      this.#write({ ...k, retiredAt: now });
      retired.push(k.kid);
    }
    this.refresh(true);
    return retired;
  }

  remove(kids: readonly string[]): void {
    for (const kid of kids) {
      try {
        unlinkSync(join(this.dir, `${kid}.json`));
      } catch {
        // Already removed by another process.
      }
    }
    this.refresh(true);
  }

  close(): void {}

  #write(key: StoredSigningKey): void {
    const file = join(this.dir, `${key.kid}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(key, null, 2), { mode: 0o600 });
    renameSync(tmp, file);
  }

  #read(): StoredSigningKey[] {
    const keys: StoredSigningKey[] = [];
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return keys;
    }
    for (const name of names) {
      if (!KEY_FILE.test(name)) continue;
      try {
        const k = asSigningKey(JSON.parse(readFileSync(join(this.dir, name), 'utf8')));
        if (k) keys.push(k);
      } catch {
        // A foreign or half-copied file must not stop the gateway; it is simply not a key.
      }
    }
    return keys.sort((a, b) => b.createdAt - a.createdAt);
  }
}

/** API keys: agents.d stores only `sha256:` hashes; a presented key is hashed and compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';

const SHA256_REF = /^sha256:([0-9a-fA-F]{64})$/;
/** Three base64url segments (the third may be empty, as in `alg: none`): such a bearer is a JWT, never an API key. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(bearer: string): boolean {
  return JWT_SHAPE.test(bearer);
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** The lowercase hex digest inside a `sha256:<hex>` reference, or undefined when the reference is not one. */
export function parseSha256Ref(ref: string): string | undefined {
  const m = SHA256_REF.exec(ref.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}

/** Maps key digests to owners (agent ids, or `admin`). Built once per reload. */
export interface ApiKeyEntry<Owner> {
  readonly digest: Buffer;
  readonly owner: Owner;
  /** `sha256:<hex>` of the key: names the credential without revealing it. */
  readonly ref: string;
}

export class ApiKeyIndex<Owner = string> {
  readonly #byDigest = new Map<string, ApiKeyEntry<Owner>>();

  /** Add a `sha256:<hex>` reference; returns false when the reference is not in that form. */
  add(ref: string, owner: Owner): boolean {
    const hex = parseSha256Ref(ref);
    if (!hex) return false;
    this.#byDigest.set(hex, { digest: Buffer.from(hex, 'hex'), owner, ref: `sha256:${hex}` });
    return true;
  }

  ownerOfRef(ref: string): Owner | undefined {
    const hex = parseSha256Ref(ref);
    return hex ? this.#byDigest.get(hex)?.owner : undefined;
  }

  get size(): number {
    return this.#byDigest.size;
  }

  /** The owner of a presented (plain) key, or undefined. */
  lookup(presentedKey: string): Owner | undefined {
    return this.match(presentedKey)?.owner;
  }

  /** The entry of a presented (plain) key, or undefined. */
  match(presentedKey: string): ApiKeyEntry<Owner> | undefined {
    if (presentedKey.length === 0) return undefined;
    const digest = createHash('sha256').update(presentedKey, 'utf8').digest();
    const entry = this.#byDigest.get(digest.toString('hex'));
    // The map lookup finds the candidate; the final comparison is constant-time on the digest bytes.
    return entry && timingSafeEqual(entry.digest, digest) ? entry : undefined;
  }
}

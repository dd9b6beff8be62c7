/** Verifies bearer JWTs from the issuers in gateway.yaml `auth.issuers` and from issuers inside the gateway (delegation). */
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { LRUCache } from 'lru-cache';
import type { IssuerConfig } from '../config/types.js';
import { shown } from './claim-text.js';

/** Asymmetric algorithms only: the keys come from a public JWKS, so HMAC would mean "the public key is the secret". */
export const DEFAULT_JWT_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];
const FORBIDDEN_ALGORITHM = /^(none|HS\d+)$/i;

export type JwtErrorCode =
  | 'expired'
  | 'not_yet_valid'
  | 'bad_signature'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'malformed'
  | 'unsupported_alg'
  | 'unknown_key';

export type JwtVerification =
  | { ok: true; claims: Readonly<JWTPayload>; issuer: string; /** Minted by the gateway itself (delegation). */ local: boolean }
  | { ok: false; error: JwtErrorCode; message: string };

export interface JwtVerifierOptions {
  /** Allowed skew for exp/nbf, seconds. */
  clockToleranceSec?: number;
  /** Distinct tokens whose successful verification is remembered until they expire. */
  cacheSize?: number;
  /** Minimum interval between re-reads of a jwksFile on an unknown `kid`. */
  jwksFileRereadMs?: number;
  /** Minimum interval between refetches of a jwksUri on an unknown `kid`. */
  jwksUriCooldownMs?: number;
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number;
}

export interface LocalIssuerOptions {
  /** Accepted `aud`; defaults to the issuer itself (tokens the gateway mints for its own endpoints). */
  audience?: string | string[];
  algorithms?: string[];
}

interface IssuerEntry {
  issuer: string;
  audience: string | string[];
  algorithms: string[];
  getKey: JWTVerifyGetKey;
  local: boolean;
}

interface CachedVerification {
  result: Extract<JwtVerification, { ok: true }>;
  expiresAtMs: number;
}

/** Thrown by a key source that cannot produce a key set at all (unreadable file, bad JSON). */
class KeySetUnavailable extends Error {}

/** A JWKS file, read lazily and re-read on an unknown `kid` at most once per interval: key rotation without a restart. */
class JwksFileKeySource {
  #resolve?: JWTVerifyGetKey;
  #readAtMs = -Infinity;
  #reading?: Promise<void>;
  #lastError?: KeySetUnavailable;

  constructor(
    private readonly path: string,
    private readonly minRereadMs: number,
    private readonly now: () => number,
  ) {}

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (this.#reading) await this.#reading;
    if (!this.#resolve) {
      if (this.now() - this.#readAtMs < this.minRereadMs && this.#lastError) throw this.#lastError;
      await this.#reload();
      if (!this.#resolve) throw this.#lastError ?? new KeySetUnavailable(`JWKS file ${this.path} has no keys`);
    }
    try {
      return await this.#resolve(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || this.now() - this.#readAtMs < this.minRereadMs) throw err;
      await this.#reload();
      return this.#resolve(header, token);
    }
  };

  #reload(): Promise<void> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<void> {
    this.#readAtMs = this.now();
    try {
      const jwks = JSON.parse(await readFile(this.path, 'utf8')) as JSONWebKeySet;
      this.#resolve = createLocalJWKSet(jwks);
      this.#lastError = undefined;
    } catch (err) {
      // Keep the last good key set: a half-written file during rotation must not lock everyone out.
      this.#lastError = new KeySetUnavailable(
        `cannot use JWKS file ${this.path}: ${(err as Error).message}; fix auth.issuers[].jwksFile (a JSON object {"keys": [...]})`,
      );
    }
  }
}

/** A key set the gateway holds in memory; rebuilt only when the provider hands back a different object (in-process rotation). */
function inProcessKeySource(getKeySet: () => JSONWebKeySet): JWTVerifyGetKey {
  let lastSet: JSONWebKeySet | undefined;
  let resolve: JWTVerifyGetKey | undefined;
  return (header, token) => {
    const set = getKeySet();
    if (set !== lastSet || !resolve) {
      resolve = createLocalJWKSet(set);
      lastSet = set;
    }
    return resolve(header, token);
  };
}

function checkedAlgorithms(issuer: string, algorithms: readonly string[] | undefined): string[] {
  const list = algorithms && algorithms.length > 0 ? [...algorithms] : [...DEFAULT_JWT_ALGORITHMS];
  const forbidden = list.filter((a) => FORBIDDEN_ALGORITHM.test(a));
  if (forbidden.length > 0) {
    throw new Error(
      `issuer ${issuer}: algorithm ${forbidden.join(', ')} is not allowed with a public key set; ` +
        `list asymmetric algorithms such as ${DEFAULT_JWT_ALGORITHMS.join(', ')} in auth.issuers[].algorithms`,
    );
  }
  return list;
}

function fail(error: JwtErrorCode, message: string): JwtVerification {
  return { ok: false, error, message };
}

/** Map a jose error to a stable code and a message that tells the caller what to fix. */
function classify(err: unknown, issuer: string): JwtVerification {
  if (err instanceof errors.JWTExpired) return fail('expired', `token expired; get a fresh token from ${issuer}`);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return fail('not_yet_valid', 'token is not valid yet (nbf in the future); check the issuer clock');
    if (err.claim === 'iss') return fail('wrong_issuer', `token issuer does not match ${issuer}`);
    if (err.claim === 'aud') return fail('wrong_audience', 'token audience is not this gateway; request a token for its resource URL');
    if (err.reason === 'missing') return fail('malformed', `token has no "${err.claim}" claim; issue tokens with an expiry`);
    return fail('malformed', `token claim "${err.claim}" is invalid: ${err.message}`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return fail('unsupported_alg', `token algorithm is not accepted for ${issuer}; sign with one of its configured algorithms`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('bad_signature', 'token signature does not verify');
  if (err instanceof errors.JWKSNoMatchingKey) {
    return fail('unknown_key', `no key of ${issuer} matches the token's kid/alg; the issuer's JWKS may not be published yet`);
  }
  if (err instanceof errors.JWKSTimeout) return fail('unknown_key', `fetching the JWKS of ${issuer} timed out; retry shortly`);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return fail('malformed', `token is malformed: ${err.message}`);
  if (err instanceof KeySetUnavailable || err instanceof errors.JOSEError) return fail('unknown_key', err.message);
  return fail('malformed', `token could not be verified: ${(err as Error)?.message ?? String(err)}`);
}

export class JwtVerifier {
  readonly #external = new Map<string, IssuerEntry>();
  readonly #local = new Map<string, IssuerEntry>();
  readonly #cache: LRUCache<string, CachedVerification>;
  readonly #clockToleranceSec: number;
  readonly #jwksFileRereadMs: number;
  readonly #jwksUriCooldownMs: number;
  readonly #now: () => number;
  #generation = 0;

  constructor(issuers: readonly IssuerConfig[] = [], options: JwtVerifierOptions = {}) {
    this.#clockToleranceSec = options.clockToleranceSec ?? 30;
    this.#jwksFileRereadMs = options.jwksFileRereadMs ?? 5_000;
    this.#jwksUriCooldownMs = options.jwksUriCooldownMs ?? 5_000;
    this.#now = options.now ?? Date.now;
    this.#cache = new LRUCache({ max: options.cacheSize ?? 10_000 });
    this.setIssuers(issuers);
  }

  /** Replace the configured issuers (reload). Throws with a fix-it message on a forbidden algorithm or missing key source. */
  setIssuers(issuers: readonly IssuerConfig[]): void {
    const next = new Map<string, IssuerEntry>();
    for (const cfg of issuers) {
      const algorithms = checkedAlgorithms(cfg.issuer, cfg.algorithms);
      let getKey: JWTVerifyGetKey;
      if (cfg.jwksFile) getKey = new JwksFileKeySource(cfg.jwksFile, this.#jwksFileRereadMs, this.#now).getKey;
      else if (cfg.jwksUri) {
        getKey = createRemoteJWKSet(new URL(cfg.jwksUri), {
          cooldownDuration: this.#jwksUriCooldownMs,
          cacheMaxAge: 10 * 60_000,
          timeoutDuration: 5_000,
        });
      } else throw new Error(`issuer ${cfg.issuer}: set jwksUri or jwksFile in auth.issuers so its tokens can be verified`);
      next.set(cfg.issuer, { issuer: cfg.issuer, audience: cfg.audience, algorithms, getKey, local: false });
    }
    this.#external.clear();
    for (const [k, v] of next) this.#external.set(k, v);
    this.#cache.clear();
    this.#generation++;
  }

  /** Changes whenever the trusted issuers do: a verification remembered outside this verifier holds within one generation. */
  get generation(): number {
    return this.#generation;
  }

  /** Whether a verification that lapses at `expiresAtMs` still stands, by this verifier's clock (as its cache judges). */
  current(expiresAtMs: number): boolean {
    return expiresAtMs > this.#now();
  }

  /** Trust tokens the gateway mints itself (delegation); `getKeySet` returns its current public keys. */
  addLocalIssuer(issuer: string, getKeySet: () => JSONWebKeySet, options: LocalIssuerOptions = {}): void {
    const algorithms = checkedAlgorithms(issuer, options.algorithms);
    const getKey = inProcessKeySource(getKeySet);
    this.#local.set(issuer, { issuer, audience: options.audience ?? issuer, algorithms, getKey, local: true });
    this.#cache.clear();
    this.#generation++;
  }

  /** Number of issuers configured in gateway.yaml (gateway-minted issuers not counted). */
  get configuredIssuerCount(): number {
    return this.#external.size;
  }

  isLocalIssuer(issuer: string): boolean {
    return this.#local.has(issuer);
  }

  /** Issuers that can be verified, as written in config (for RFC 9728 metadata). */
  configuredIssuers(): string[] {
    return [...this.#external.keys()];
  }

  /** A still-valid earlier verification of this exact token, or undefined: the synchronous hot path. */
  cached(token: string): JwtVerification | undefined {
    const hit = this.#cache.get(token);
    if (!hit) return undefined;
    if (hit.expiresAtMs <= this.#now()) {
      this.#cache.delete(token);
      return undefined;
    }
    return hit.result;
  }

  /** Verify signature, iss, aud, exp/nbf and algorithm; never throws. */
  async verify(token: string): Promise<JwtVerification> {
    const hit = this.cached(token);
    if (hit) return hit;

    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      return fail('malformed', 'token is not a well-formed JWT (three base64url parts with a JSON payload)');
    }
    if (typeof unverified.iss !== 'string') return fail('malformed', 'token has no "iss" claim');
    const entry = this.#local.get(unverified.iss) ?? this.#external.get(unverified.iss);
    if (!entry) return fail('wrong_issuer', `token issuer ${shown(unverified.iss)} is not trusted; add it to auth.issuers in gateway.yaml`);

    const options: JWTVerifyOptions = {
      issuer: entry.issuer,
      audience: entry.audience,
      algorithms: entry.algorithms,
      clockTolerance: this.#clockToleranceSec,
      currentDate: new Date(this.#now()),
      requiredClaims: ['exp'],
    };
    let claims: JWTPayload;
    try {
      claims = (await this.#verifyWithKeySet(token, entry, options)).payload;
    } catch (err) {
      return classify(err, entry.issuer);
    }
    const result = { ok: true as const, claims: Object.freeze(claims), issuer: entry.issuer, local: entry.local };
    this.#cache.set(token, { result, expiresAtMs: (claims.exp as number) * 1000 });
    return result;
  }

  /** A token without `kid` may match several keys (mid-rotation): try each, as jose leaves that to the caller. */
  async #verifyWithKeySet(token: string, entry: IssuerEntry, options: JWTVerifyOptions) {
    try {
      return await jwtVerify(token, entry.getKey, options);
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      let lastError: unknown = err;
      for await (const key of err) {
        try {
          return await jwtVerify(token, key, options);
        } catch (inner) {
          lastError = inner;
        }
      }
      throw lastError;
    }
  }
}

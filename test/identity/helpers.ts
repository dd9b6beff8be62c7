/** Key pairs, JWKS files and agent manifests for the identity tests. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';
import type { AgentManifest } from '../../src/config/types.js';

export const ISSUER = 'https://idp.test';
export const AUDIENCE = 'https://gw.test/mcp';

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

export function jwks(...keys: TestKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.publicJwk) };
}

export async function writeJwksFile(...keys: TestKey[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-jwks-'));
  const file = join(dir, 'jwks.json');
  await writeFile(file, JSON.stringify(jwks(...keys)));
  return file;
}

export interface SignOptions {
  key: TestKey;
  nowSec: number;
  /** Lifetime in seconds from nowSec; null leaves exp out. */
  ttlSec?: number | null;
  kid?: string | null;
}

/** A token with iss/aud/iat/exp defaults that each test overrides as needed. */
export function sign(claims: JWTPayload, opts: SignOptions): Promise<string> {
  const kid = opts.kid === undefined ? opts.key.kid : opts.kid;
  const payload: JWTPayload = { iss: ISSUER, aud: AUDIENCE, iat: opts.nowSec, ...claims };
  if (opts.ttlSec !== null && payload.exp === undefined) payload.exp = opts.nowSec + (opts.ttlSec ?? 3600);
  return new SignJWT(payload).setProtectedHeader({ alg: opts.key.alg, typ: 'JWT', ...(kid ? { kid } : {}) }).sign(opts.key.privateKey);
}

export function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export function agent(id: string, fields: Partial<Omit<AgentManifest, 'id'>> = {}): AgentManifest {
  return {
    id,
    credentials: { apiKeys: [] },
    tools: { allow: [], deny: [], rules: [] },
    a2a: { allow: [] },
    models: { allow: [], deny: [] },
    delegation: { agents: [], maxDepth: 0, maxChildren: 8 },
    limits: {},
    source: { file: `/agents.d/${id}.yaml`, line: 1 },
    ...fields,
  };
}

export function agentMap(...agents: AgentManifest[]): Map<string, AgentManifest> {
  return new Map(agents.map((a) => [a.id, a]));
}

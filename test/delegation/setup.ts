/** A real gateway with an issuer (JWKS file), two upstreams and a family of agents that delegate to each other. */
import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, fixtureManifest, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { makeKey, sign, writeJwksFile, ISSUER, AUDIENCE, type TestKey } from '../identity/helpers.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

export function agentFile(id: string, fields: Record<string, unknown>): Record<string, unknown> {
  return { id, owner: `${id}-owner@example.com`, credentials: { jwt: { sub: `svc-${id}` } }, ...fields };
}

/** root → child → grandchild; outsider is never delegated to. */
export const AGENTS = {
  root: agentFile('root', { tools: { allow: ['alpha__*', 'beta__*'] }, delegation: { agents: ['child'], maxDepth: 2, maxChildren: 2 } }),
  child: agentFile('child', { tools: { allow: ['alpha__*', 'beta__echo'] }, delegation: { agents: ['grandchild'], maxDepth: 1, maxChildren: 4 } }),
  grandchild: agentFile('grandchild', { tools: { allow: ['*'] }, delegation: { agents: ['grandchild', 'child'], maxDepth: 5, maxChildren: 4 } }),
  outsider: agentFile('outsider', { tools: { allow: ['*'] } }),
};

/** With issuers configured the admin API needs an admin token. */
export const ADMIN_TOKEN = 'delegation-admin-token';
const ADMIN_HEADERS = { authorization: `Bearer ${ADMIN_TOKEN}` };
/** gateway.yaml `admin` section accepting ADMIN_TOKEN, for gateways of these tests that use adminGet/adminPost. */
export const ADMIN_YAML = { tokens: [`sha256:${createHash('sha256').update(ADMIN_TOKEN).digest('hex')}`] };

export interface DelegationWorld {
  gw: RunningGateway;
  issuerKey: TestKey;
  /** A fresh root token (own jti) for an agent's `svc-<id>` subject. */
  rootToken(agent?: string, ttlSec?: number, extra?: Record<string, unknown>): Promise<string>;
  writeAgent(id: string, manifest: Record<string, unknown>): void;
}

export async function startDelegationWorld(opts: { maxTokenSeconds?: number } = {}): Promise<DelegationWorld> {
  const issuerKey = await makeKey('issuer-1', 'ES256');
  const jwksFile = await writeJwksFile(issuerKey);
  const gw = await startGateway({
    servers: { alpha: fixtureManifest(), beta: fixtureManifest() },
    agents: AGENTS,
    gatewayYaml: {
      auth: { issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwksFile }] },
      admin: ADMIN_YAML,
      ...(opts.maxTokenSeconds ? { delegation: { maxTokenSeconds: opts.maxTokenSeconds } } : {}),
    },
  });
  return {
    gw,
    issuerKey,
    rootToken: (agent = 'root', ttlSec = 3600, extra = {}) =>
      sign({ sub: `svc-${agent}`, jti: randomUUID(), ...extra }, { key: issuerKey, nowSec: Math.floor(Date.now() / 1000), ttlSec }),
    writeAgent: (id, manifest) => writeFileSync(join(gw.dir, 'agents.d', `${id}.yaml`), toYaml(manifest)),
  };
}

export interface TokenAnswer {
  status: number;
  cacheControl: string | null;
  body: Record<string, unknown>;
}

export async function exchange(gw: RunningGateway, subjectToken: string, audience: string, extra: Record<string, string> = {}): Promise<TokenAnswer> {
  const res = await fetch(`${gw.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, audience, ...extra }),
  });
  return { status: res.status, cacheControl: res.headers.get('cache-control'), body: (await res.json()) as Record<string, unknown> };
}

/** Exchange that must succeed; returns the minted token. */
export async function delegate(gw: RunningGateway, subjectToken: string, audience: string, extra: Record<string, string> = {}): Promise<string> {
  const a = await exchange(gw, subjectToken, audience, extra);
  if (a.status !== 200) throw new Error(`exchange for ${audience} answered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body.access_token as string;
}

export function clientFor(gw: RunningGateway, token: string, name = 'agent'): Promise<Client> {
  return connectClient(gw.mcpUrl, { name, headers: { authorization: `Bearer ${token}` } });
}

export async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name).sort();
}

/** Payload of a JWT, decoded without verification (tests look at what the gateway minted). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export async function adminGet(gw: RunningGateway, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}/admin/api${path}`, { headers: ADMIN_HEADERS });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function adminPost(gw: RunningGateway, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}/admin/api${path}`, { method: 'POST', headers: ADMIN_HEADERS });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new Error(`POST /admin/api${path} answered ${res.status} with non-JSON: ${text.slice(0, 400)}`);
  }
}

/** Status of a plain initialize with this bearer (401 for refused tokens). */
export async function initializeStatus(gw: RunningGateway, token: string): Promise<number> {
  const res = await fetch(gw.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }),
  });
  await res.text();
  return res.status;
}

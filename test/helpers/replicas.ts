/**
 * Several gateway processes as one service: N `switchyard serve` replicas on one configuration (gateway.yaml,
 * servers.d, agents.d) with a data dir each, as pods have, sharing only the audit key (a mounted secret), a throwaway
 * Redis (its own server, so a test can stop and restart it) and a fresh PostgreSQL database, behind the round-robin
 * balancer of bench/balancer.mjs. Ports are chosen at run time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBalancer, type Balancer } from '../../bench/balancer.mjs';
import { launch, makeHome, statsFixture, type GatewayHome, type LaunchedGateway } from './audit-harness.js';
import type { Manifest } from './gateway.js';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { freePort, startRedis, testPostgres, type TestPostgres, type ThrowawayRedis } from './shared-stores.js';

const readYaml = (file: string): Record<string, unknown> => (parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown> | null) ?? {};

export const sha256 = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

export interface ReplicaSetOptions {
  /** How many gateways (default 3). */
  replicas?: number;
  /** agents.d files; the `fx` upstream (the stats-recording feature fixture) is always there. */
  agents?: Record<string, Manifest>;
  /** More of gateway.yaml; `state` and `store` are set to the set's Redis and PostgreSQL. */
  gatewayYaml?: Record<string, unknown>;
  failMode?: 'closed' | 'open';
  /** More servers.d entries beside `fx`. */
  servers?: Record<string, unknown>;
  env?: Record<string, string>;
}

export interface ReplicaSet {
  home: GatewayHome;
  /** The audit key every replica writes with (audit.hmacKeyFile), for `switchyard audit verify --key`. */
  auditKey: string;
  redis: ThrowawayRedis;
  postgres: TestPostgres;
  replicas: LaunchedGateway[];
  balancer: Balancer;
  /** The balancer's base URL and its /mcp. */
  url: string;
  mcpUrl: string;
  /** Start replica `i` again on the same home (after a kill). */
  restart(i: number): Promise<LaunchedGateway>;
  close(): Promise<void>;
}

export async function startReplicas(opts: ReplicaSetOptions = {}): Promise<ReplicaSet> {
  const n = opts.replicas ?? 3;
  const redis = await startRedis();
  const postgres = await testPostgres();
  // The balancer's address is the service's public URL: the issuer of delegated tokens every replica accepts.
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const home = makeHome({
    servers: (h) => ({ ...opts.servers, fx: statsFixture(h) }),
    agents: opts.agents,
    gatewayYaml: { publicUrl, ...opts.gatewayYaml, state: { redis: redis.url, failMode: opts.failMode ?? 'closed' }, store: { postgres: postgres.url } },
  });
  const auditKey = join(home.dir, 'secrets', 'audit-hmac.key');
  mkdirSync(join(home.dir, 'secrets'));
  writeFileSync(auditKey, randomBytes(32).toString('hex'), { mode: 0o600 });
  const yaml = readYaml(home.configPath);
  writeFileSync(home.configPath, toYaml({ ...yaml, audit: { ...(yaml.audit as object | undefined), hmacKeyFile: auditKey } }));
  // Nothing on a replica's own disk is shared: each gets a data dir of its own.
  const homeOf = (i: number): GatewayHome => ({ ...home, dataDir: join(home.dir, `data-${i}`) });
  const start = (i: number) => launch(homeOf(i), { env: opts.env, timeoutMs: 60_000 });
  const replicas: LaunchedGateway[] = [];
  let balancer: Balancer | undefined;
  const close = async () => {
    await balancer?.close();
    await Promise.allSettled(replicas.map((r) => r.stop()));
    await postgres.close().catch(() => {});
    await redis.close();
  };
  try {
    // The first one alone: it runs the migrations and creates the key files the others then read.
    replicas.push(await start(0));
    replicas.push(...(await Promise.all(Array.from({ length: n - 1 }, (_, i) => start(i + 1)))));
    balancer = await startBalancer({ targets: replicas.map((r) => r.url), port });
  } catch (err) {
    await close();
    throw err;
  }
  const b = balancer;
  return {
    home,
    auditKey,
    redis,
    postgres,
    replicas,
    balancer: b,
    url: b.url,
    mcpUrl: `${b.url}/mcp`,
    async restart(i) {
      await replicas[i]!.stop();
      replicas[i] = await start(i);
      b.setTargets(replicas.map((r) => r.url));
      return replicas[i]!;
    },
    close,
  };
}

// ---- stateless (2026-07-28) requests: each stands alone, so the balancer may send it to any replica ----------

export const PV_2026 = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': PV_2026, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'replicas-e2e', version: '1.0.0' } };

export interface RpcAnswer {
  status: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: Record<string, unknown> };
}

/** One 2026-07-28 tools/call (or other method) as a single POST; `workflowId` joins a named workflow. */
export async function statelessCall(
  mcpUrl: string,
  method: string,
  params: Record<string, unknown>,
  opts: { key?: string; bearer?: string; workflowId?: string; signal?: AbortSignal; capabilities?: Record<string, unknown>; id?: number } = {},
): Promise<RpcAnswer> {
  const name = method === 'tools/call' ? params.name : undefined;
  const token = opts.bearer ?? opts.key;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': PV_2026,
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...(opts.workflowId ? { 'x-workflow-id': opts.workflowId } : {}),
  };
  const res = await fetch(mcpUrl, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: opts.id ?? 1, method, params: { ...params, _meta: opts.capabilities ? { ...META, 'io.modelcontextprotocol/clientCapabilities': opts.capabilities } : META } }), signal: opts.signal });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  let last: Record<string, unknown> = {};
  try {
    const messages = type.includes('text/event-stream')
      ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>)
      : [JSON.parse(text) as Record<string, unknown>];
    last = messages[messages.length - 1] ?? {};
  } catch {
    return { status: res.status, error: { code: NaN, message: text.slice(0, 500) } };
  }
  return { status: res.status, result: last.result as RpcAnswer['result'], error: last.error as RpcAnswer['error'] };
}

/** A tools/call of the fixture's echo through the stateless path. */
export function echo(mcpUrl: string, text: string, opts: Parameters<typeof statelessCall>[3] = {}): Promise<RpcAnswer> {
  return statelessCall(mcpUrl, 'tools/call', { name: 'fx__echo', arguments: { text } }, opts);
}

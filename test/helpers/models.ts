/**
 * Model-route harness: the fake provider fixture as a real process, a gateway whose gateway.yaml lists models on it,
 * agents with API keys, and readers for the fake's record of what it received.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { killTree, REPO_ROOT, startGateway, waitFor, type GatewayOptions, type RunningGateway } from './gateway.js';

export const FAKE_PROVIDER = join(REPO_ROOT, 'test', 'fixtures', 'fake-provider.mjs');
/** The key the gateway sends upstream; the provider must never see an agent's own credential. */
export const PROVIDER_KEY = 'sk-gateway-upstream-key-0123456789';

export interface ReceivedRequest {
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface FakeProvider {
  url: string;
  received(): Promise<ReceivedRequest[]>;
  forget(): Promise<void>;
  /** Chat requests of *held* models waiting at the provider; `release` answers them all. */
  held(): Promise<number>;
  release(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFakeProvider(): Promise<FakeProvider> {
  const proc = spawn(process.execPath, [FAKE_PROVIDER, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /listening (http:\/\/\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`fake provider exited with ${code}`)));
  });
  return {
    url,
    received: async () => ((await (await fetch(`${url}/_received`)).json()) as { received: ReceivedRequest[] }).received,
    forget: async () => void (await fetch(`${url}/_received`, { method: 'DELETE' })),
    held: async () => ((await (await fetch(`${url}/_held`)).json()) as { held: number }).held,
    release: async () => void (await fetch(`${url}/_held`, { method: 'POST' })),
    stop: () => killTree(proc),
  };
}

export interface Credential {
  key: string;
  hash: string;
}

export function newKey(prefix = 'sy'): Credential {
  const key = `${prefix}-${randomBytes(16).toString('hex')}`;
  return { key, hash: `sha256:${createHash('sha256').update(key).digest('hex')}` };
}

/** Models on the fake provider: the upstream id picks its behaviour (see fake-provider.mjs). */
export function fakeModels(fakeUrl: string, extra: Record<string, unknown>[] = []): Record<string, unknown>[] {
  const openai = (name: string, model: string, more: Record<string, unknown> = {}) => ({ name, provider: 'openai', baseUrl: `${fakeUrl}/v1`, apiKey: '${PROVIDER_KEY}', model, price: { input: 1, output: 2, cachedInput: 0.5 }, ...more });
  const anthropic = (name: string, model: string, more: Record<string, unknown> = {}) => ({ name, provider: 'anthropic', baseUrl: fakeUrl, apiKey: '${PROVIDER_KEY}', model, price: { input: 3, output: 15 }, ...more });
  return [
    openai('gpt-fake', 'fake-ok'),
    openai('gpt-held', 'fake-held'),
    openai('gpt-tools', 'fake-tools'),
    openai('gpt-slow', 'fake-slow'),
    openai('gpt-cut', 'fake-cut'),
    openai('gpt-nousage', 'fake-nousage'),
    openai('gpt-garbage', 'fake-garbage'),
    openai('gpt-hang', 'fake-hang', { timeoutMs: 1500 }),
    openai('gpt-401', 'fake-fail401'),
    openai('gpt-bad400', 'fake-bad400'),
    openai('gpt-cached', 'fake-cached'),
    openai('gpt-flaky', 'fake-fail500', { fallbacks: ['gpt-backup'] }),
    openai('gpt-backup', 'fake-backup'),
    openai('gpt-broken', 'fake-fail500-broken', { breaker: { failures: 2, cooldownSeconds: 600 } }),
    openai('embed-fake', 'fake-embed'),
    openai('gpt-secret', 'fake-ok'),
    anthropic('claude-fake', 'fake-claude'),
    anthropic('claude-slow', 'fake-claude-slow'),
    anthropic('claude-tools', 'fake-claude-tools'),
    ...extra,
  ];
}

export interface ModelGatewayOptions extends Partial<GatewayOptions> {
  fakeUrl: string;
  /** agents.d files by id. */
  agents: Record<string, Record<string, unknown>>;
  gatewayYaml?: Record<string, unknown>;
  extraModels?: Record<string, unknown>[];
}

export const ADMIN = newKey('admin');

export async function startModelGateway(opts: ModelGatewayOptions): Promise<RunningGateway> {
  return startGateway({
    servers: opts.servers ?? {},
    agents: opts.agents,
    gatewayYaml: { admin: { tokens: [ADMIN.hash] }, models: fakeModels(opts.fakeUrl, opts.extraModels), ...opts.gatewayYaml },
    env: { PROVIDER_KEY, ...opts.env },
    dir: opts.dir,
  });
}

export async function adminGet<T = Record<string, unknown>>(gw: RunningGateway, path: string): Promise<T> {
  const res = await fetch(`${gw.url}/admin/api${path}`, { headers: { authorization: `Bearer ${ADMIN.key}` } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export interface ModelAuditRecord {
  workflowId: string;
  step: number;
  agent: string;
  kind: string;
  server: string | null;
  tool: string;
  outcome: string;
  reason: string | null;
  tokens: number | null;
  args: unknown;
  model?: { name: string; costUsd: number; provider?: string; upstreamModel?: string; tokens?: { input: number; output: number; cachedInput: number }; finishReason?: string; ttftMs?: number; tokensEstimated?: boolean; answeredBy?: string; bodies?: unknown };
}

/** Model steps of an agent in the audit trail (the writer is batched: wait until `count` are there). */
export async function modelRecords(gw: RunningGateway, agent: string, count: number): Promise<ModelAuditRecord[]> {
  return waitFor(
    async () => {
      const page = await adminGet<{ records: ModelAuditRecord[] }>(gw, `/audit?agent=${encodeURIComponent(agent)}&limit=1000`);
      const rows = page.records.filter((r) => r.kind === 'model/call');
      return rows.length >= count ? rows : undefined;
    },
    { what: `${count} model steps of ${agent} in the audit trail`, timeoutMs: 10_000 },
  );
}

export function agent(id: string, cred: Credential, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, credentials: { apiKeys: [cred.hash] }, models: { allow: ['*'] }, tools: { allow: ['*'] }, ...extra };
}

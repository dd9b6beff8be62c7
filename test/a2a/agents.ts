/** Starts test/fixtures/a2a-agents.mjs (echo-agent and steps-agent) and builds servers.d manifests for them. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import type { ServerManifest } from '../../src/config/types.js';
import { killTree, REPO_ROOT } from '../helpers/gateway.js';

export const AGENTS_FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'a2a-agents.mjs');

export interface RunningAgents {
  echo: string;
  steps: string;
  logs: string[];
  stop(): Promise<void>;
}

/** Spawn both agents on ephemeral ports; resolves with their base URLs once both print `listening`. */
export async function startAgents(args: string[] = []): Promise<RunningAgents> {
  const proc = spawn(process.execPath, [AGENTS_FIXTURE, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const logs: string[] = [];
  const urls = new Map<string, string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a2a-agents fixture not ready within 15 s:\n${logs.join('\n')}`)), 15_000);
    proc.stderr!.on('data', (c: Buffer) => logs.push(`[stderr] ${c.toString()}`));
    let buf = '';
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        const m = /^listening (\S+) (\S+)$/.exec(line);
        if (m) urls.set(m[1]!, m[2]!);
        if (urls.size === 2) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a2a-agents fixture exited (${code}) before it was ready:\n${logs.join('\n')}`));
    });
  });
  return { echo: urls.get('echo-agent')!, steps: urls.get('steps-agent')!, logs, stop: () => killTree(proc) };
}

/** A complete `transport: a2a` manifest, as the config loader would produce it. */
export function a2aManifest(name: string, url: string, extra: Partial<ServerManifest> = {}): ServerManifest {
  // connectTimeoutMs, idleSeconds and breaker stay unset on purpose: the gateway-wide settings then apply (known-down relies on it).
  return {
    name,
    transport: 'a2a',
    url,
    args: [],
    env: {},
    headers: {},
    tools: { include: ['*'], exclude: [] },
    timeoutMs: 30_000,
    session: 'per-client',
    required: false,
    source: { file: `/virtual/servers.d/${name}.yaml`, line: 1 },
    ...extra,
  } as ServerManifest;
}

export const silentLog = pino({ level: 'silent' });

/** Shared fixtures for the audit room's tests: temp data dirs and Step builders. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Caller, Step, StepOutcome } from '../../src/gateway/types.js';

const dirs: string[] = [];

export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-audit-'));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function caller(agentId = 'agent-a', extra: Partial<Caller> = {}): Caller {
  return { agentId, principal: agentId, user: 'alice@example.com', chain: [agentId], via: 'local', ...extra };
}

export function step(fields: Partial<Step> & { workflowId: string; stepNo: number }): Step {
  const target = fields.target ?? 'search';
  const server = 'server' in fields ? fields.server : 'github';
  return {
    kind: 'tools/call',
    caller: caller(),
    target,
    exposedName: server ? `${server}__${target}` : target,
    args: { q: 'hello' },
    startedAt: Date.now(),
    ...fields,
    server,
  };
}

export function ok(durationMs = 3, extra: Partial<StepOutcome> = {}): StepOutcome {
  return { outcome: 'ok', durationMs, bytes: 120, ...extra };
}

export function refused(reason: string, durationMs = 0.25): StepOutcome {
  return { outcome: 'refused', reason, durationMs };
}

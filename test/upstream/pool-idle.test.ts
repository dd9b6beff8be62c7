// Idle reaping of per-client upstream sessions: a session's idle time counts from when it became ready, so one
// whose start took longer than idleSeconds is not closed the moment it is up.
import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import type { ServerManifest } from '../../src/config/types.js';
import { UpstreamPool } from '../../src/upstream/pool.js';
import { FIXTURE, REPO_ROOT } from '../helpers/gateway.js';

const manifest: ServerManifest = {
  name: 'fx',
  transport: 'stdio',
  command: process.execPath,
  args: [FIXTURE],
  env: {},
  cwd: REPO_ROOT,
  headers: {},
  tools: { include: [], exclude: [] },
  timeoutMs: 30_000,
  connectTimeoutMs: 30_000,
  idleSeconds: 1,
  breaker: { failures: 5, cooldownSeconds: 10 },
  session: 'per-client',
  required: false,
  source: { file: 'fx.yaml', line: 1 },
};
const init = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'pool-idle', version: '1' } };

let pool: UpstreamPool | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await pool?.close();
});

describe('idle upstream sessions', () => {
  it('a session whose start outlasted idleSeconds is kept once ready, and reaped after idleSeconds unused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    pool = new UpstreamPool(manifest, pino({ level: 'silent' }));
    const ready = pool.acquire('client-1', init, {});
    vi.setSystemTime(t0 + 5_000); // the start took longer than idleSeconds
    await ready;
    pool.reapIdle();
    expect(pool.openSessions).toBe(1);
    pool.reapIdle(t0 + 5_000 + 1_001);
    expect(pool.openSessions).toBe(0);
  });
});

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/config/index.js';
import type { AgentManifest } from '../../src/config/types.js';
import { SessionRefusedError } from '../../src/gateway/admission.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { MemoryWorkflows } from '../../src/gateway/memory-workflows.js';
import type { Caller } from '../../src/gateway/types.js';
import { scratch, stopAll } from '../helpers/gateway.js';

const capped = { id: 'capped', limits: { sessions: 2 } } as unknown as AgentManifest;
const caller: Caller = { agentId: 'capped', principal: 'capped', agent: capped, chain: ['capped'], via: 'apikey' };
let gw: Gateway | undefined;

afterEach(async () => {
  await gw?.close();
  await stopAll();
});

function gateway(): Gateway {
  const { config } = loadGatewayConfig(undefined, {}, { cwd: scratch('switchyard-admission-') });
  gw = new Gateway({ config, log: pino({ level: 'silent' }), workflows: new MemoryWorkflows() });
  return gw;
}

describe('session admission at the per-agent cap', () => {
  it('holds an agent without limits.sessions to 32, but the local-mode agent only to the total cap', async () => {
    const g = gateway();
    const plain: Caller = { agentId: 'plain', principal: 'plain', agent: { id: 'plain', limits: {} } as unknown as AgentManifest, chain: ['plain'], via: 'apikey' };
    const local: Caller = { agentId: 'local', principal: 'local', chain: ['local'], via: 'local' };
    for (let i = 0; i < 32; i++) await g.initialize({}, plain, {});
    const err = await g.initialize({}, plain, {}).then(() => undefined, (e: unknown) => e);
    expect((err as SessionRefusedError).refusal).toMatchObject({ reason: 'rate_limited', data: { limit: 'sessions', max: 32, used: 32 } });
    for (let i = 0; i < 40; i++) await g.initialize({}, local, {});
    expect(g.sessions.size).toBe(72);
  });

  it('refuses one session too many while the others are in use', async () => {
    const g = gateway();
    await g.initialize({}, caller, {});
    await g.initialize({}, caller, {});
    const err = await g.initialize({}, caller, {}).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SessionRefusedError);
    expect((err as SessionRefusedError).refusal).toMatchObject({ reason: 'rate_limited', data: { limit: 'sessions', max: 2, used: 2 } });
  });

  it('ends the longest-silent abandoned session (no stream, nothing in flight, silent a minute) instead of refusing', async () => {
    const g = gateway();
    const old = (await g.initialize({}, caller, {})).session;
    const recent = (await g.initialize({}, caller, {})).session;
    old.lastSeen = Date.now() - 120_000;
    const next = (await g.initialize({}, caller, {})).session;
    expect([...g.sessions.keys()].sort()).toEqual([recent.id, next.id].sort());
    expect(old.closed).toBe(true);
    // A session with an open GET stream is in use however long it was silent.
    recent.lastSeen = Date.now() - 120_000;
    recent.attachStream({ send: () => {} });
    next.lastSeen = Date.now() - 120_000;
    next.inFlight.set(1, new AbortController());
    await expect(g.initialize({}, caller, {})).rejects.toBeInstanceOf(SessionRefusedError);
  });
});

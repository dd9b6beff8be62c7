/**
 * An A2A agent its upstream pool knows to be down is refused at once on /a2a/{name}, as on its MCP tools: the same
 * answer, a recorded step, and the agent's breaker fed.
 */
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/config/index.js';
import { mountA2a } from '../../src/downstream/a2a-server.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { MemoryWorkflows } from '../../src/gateway/memory-workflows.js';
import type { Step, StepOutcome } from '../../src/gateway/types.js';
import { BreakerBoard } from '../../src/limits/breaker.js';
import { agentMessage } from '../../src/upstream/errors.js';
import { scratch, stopAll } from '../helpers/gateway.js';
import { a2aManifest, silentLog } from './agents.js';

let gw: Gateway;
let server: http.Server;
let base: string;
const recorded: Array<[Step, StepOutcome]> = [];
const breakers = new BreakerBoard({ failureThreshold: 2, cooldownMs: 60_000 });

/** A port nothing listens on: bound once by us, then closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  const { config } = loadGatewayConfig(undefined, {}, { cwd: scratch('a2a-down-') });
  gw = new Gateway({ config, log: silentLog, workflows: new MemoryWorkflows(), breakers, sinks: [{ record: (s, o) => void recorded.push([{ ...s }, o]) }] });
  await gw.applyServers(new Map([['gone', a2aManifest('gone', `http://127.0.0.1:${await closedPort()}`)]]));
  const pool = gw.pools.get('gone')!;
  // The pool's first check at start finds the agent down; wait for that verdict, not for time.
  if (!pool.downReason()) await new Promise<void>((resolve) => pool.onHealth((h) => !h.up && resolve()));
  const app = express();
  mountA2a(app, { gateway: gw, authenticate: () => ({ ok: true, caller: { agentId: 'local', principal: 'local', chain: ['local'], via: 'local' } }), localMode: true });
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await gw?.close();
  await stopAll();
});

const send = async (id: number) => {
  const res = await fetch(`${base}/a2a/gone`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'SendMessage', params: { message: { messageId: `m${id}`, role: 'ROLE_USER', parts: [{ text: 'hi' }] } } }),
  });
  return (await res.json()) as { error?: { code: number; message: string; data?: Record<string, unknown> } };
};

describe('an A2A agent known to be down', () => {
  it('is refused at once with the answer its MCP tools give, each message a failed step, until its circuit opens', async () => {
    const first = await send(1);
    expect(first.error).toMatchObject({ code: -32030, data: { reason: 'upstream_unavailable', server: 'gone' } });
    // The reason the pool's check found, in the words callers of its MCP tools get; never the agent's address.
    expect(first.error?.message).toBe(agentMessage(gw.pools.get('gone')!.downReason()!));
    expect(first.error?.message).toMatch(/^Upstream 'gone' is unavailable: /);
    expect(first.error?.message).not.toContain('127.0.0.1');
    await send(2);
    const third = await send(3);
    expect(third.error).toMatchObject({ code: -32030, data: { reason: 'upstream_unavailable', server: 'gone', breaker: 'open' } });
    expect(recorded.map(([s, o]) => [s.kind, o.outcome, o.reason])).toEqual([
      ['a2a/message', 'error', 'upstream_unavailable'],
      ['a2a/message', 'error', 'upstream_unavailable'],
      ['a2a/message', 'refused', 'upstream_unavailable'],
    ]);
  });
});

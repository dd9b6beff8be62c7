// Session sharing when the directory misbehaves: with Redis down a new session is refused under failMode closed and
// kept on its replica alone under open; a request for another replica's session gets 503 (not a false 404); ids that
// are not the gateway's never reach the directory; a closed session's record is released.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ClientSession } from '../../src/gateway/client-session.js';
import type { Caller } from '../../src/gateway/types.js';
import { SessionSharing } from '../../src/downstream/session-forward.js';
import { MemorySessionDirectory } from '../../src/stores/memory/session-directory.js';
import { RedisSessionDirectory } from '../../src/stores/redis/session-directory.js';
import type { SessionDirectory } from '../../src/stores/sessions.js';
import { sharedStoresUnavailable, startRedis, stopTestRedis } from '../helpers/shared-stores.js';
import { waitFor } from '../helpers/gateway.js';

const skip = sharedStoresUnavailable();
if (skip) console.log(`Redis-down session sharing skipped: ${skip}`);

const caller: Caller = { agentId: 'a', principal: 'apikey:sha256:aa', chain: ['a'], via: 'apikey' };
const session = () => new ClientSession({ protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } }, caller, 'wf-1', {});

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

/** An HTTP server whose every request goes to sharing.forward for `sid`. */
async function forwarding(sharing: SessionSharing): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => void sharing.forward(req, res, caller, String(req.headers['mcp-session-id'])));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

afterAll(stopTestRedis);

describe('session sharing', () => {
  it('a closed session is released from the directory; a malformed id is 404 without a lookup', async () => {
    const directory = new MemorySessionDirectory('replica-a');
    let lookups = 0;
    const counting: SessionDirectory = Object.assign(Object.create(directory) as SessionDirectory, {
      lookup: (id: string) => {
        lookups++;
        return directory.lookup(id);
      },
    });
    const sharing = new SessionSharing({ directory: counting, log: capture().log, failMode: 'closed', idleMs: 900_000 });
    const cs = session();
    expect(await sharing.claim(cs)).toBe(true);
    expect(directory.lookup(cs.id)).toMatchObject({ replica: 'replica-a' });
    cs.close();
    await waitFor(() => directory.lookup(cs.id) === undefined, { what: 'the release' });
    const front = await forwarding(sharing);
    const res = await fetch(`${front.url}/mcp`, { headers: { 'mcp-session-id': 'switchyard:replica:x' } });
    expect(res.status).toBe(404);
    expect(lookups).toBe(0);
    await front.close();
    await sharing.close();
  });
});

describe.skipIf(skip)('session sharing while Redis is down', () => {
  it('failMode closed refuses the session, open keeps it on this replica, and forwarding answers 503', async () => {
    const server = await startRedis();
    const closedLog = capture();
    const openLog = capture();
    const closedDir = new RedisSessionDirectory({ url: server.url, replicaId: 'replica-a' });
    const openDir = new RedisSessionDirectory({ url: server.url, replicaId: 'replica-b' });
    expect(await closedDir.ready()).toBe(true);
    expect(await openDir.ready()).toBe(true);
    const closed = new SessionSharing({ directory: closedDir, log: closedLog.log, failMode: 'closed', idleMs: 900_000 });
    const open = new SessionSharing({ directory: openDir, log: openLog.log, failMode: 'open', idleMs: 900_000 });
    const front = await forwarding(closed);
    try {
      await server.stop();
      await waitFor(() => !closedDir.health().ok && !openDir.health().ok, { what: 'both directories to see Redis gone' });
      expect(await closed.claim(session())).toBe(false);
      expect(closedLog.lines.some((l) => String(l.msg).startsWith('session refused: the session directory (Redis) is unreachable and state.failMode is closed'))).toBe(true);
      expect(await open.claim(session())).toBe(true);
      expect(openLog.lines.some((l) => String(l.msg).includes('served by this replica alone until Redis is back (state.failMode open)'))).toBe(true);
      const res = await fetch(`${front.url}/mcp`, { headers: { 'mcp-session-id': '33333333-3333-4333-8333-333333333333' } });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/session directory is unreachable/);
      // Back: a session held here through the outage is written again, and the other replica finds it.
      const kept = session();
      expect(await open.claim(kept)).toBe(true);
      await server.start();
      await waitFor(() => openDir.health().ok && closedDir.health().ok, { timeoutMs: 15_000, what: 'reconnect' });
      open.resync();
      await waitFor(async () => (await closedDir.lookup(kept.id))?.replica === 'replica-b', { what: 'the kept session written back' });
    } finally {
      await front.close();
      await closed.close();
      await open.close();
      await server.close();
    }
  }, 30_000);
});

// The console's sign-in over its session store: the store keeps the cookie id's hash, and a store that does not
// answer is a clear 503 on sign-in, on the session check and in front of the admin API, never a silent sign-out.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsoleSessions } from '../../src/downstream/console-session.js';
import { MemoryConsoleSessions, type ConsoleSessionRecord, type ConsoleSessionStore } from '../../src/stores/console-sessions.js';

const ADMIN = 'admin-token-console-store';
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

class FlakyStore implements ConsoleSessionStore {
  readonly where = 'PostgreSQL at db.test';
  down = false;
  readonly inner = new MemoryConsoleSessions();
  readonly keys: string[] = [];
  private check(): void {
    if (this.down) throw new Error('connection refused');
  }
  put(idHash: string, s: ConsoleSessionRecord) {
    this.check();
    this.keys.push(idHash);
    this.inner.put(idHash, s);
  }
  get(idHash: string, now: number) {
    this.check();
    return this.inner.get(idHash, now);
  }
  delete(idHash: string) {
    this.check();
    this.inner.delete(idHash);
  }
}

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function serve(store: ConsoleSessionStore): Promise<string> {
  const sessions = new ConsoleSessions({ tokens: [sha(ADMIN)], localMode: () => false, secure: () => false, store });
  const app = express();
  app.use('/ui/api', sessions.router());
  app.use('/admin/api', sessions.gate(), (_req, res) => void res.json({ admin: res.locals.admin ?? null }));
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server!.once('listening', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('console sessions over a store', () => {
  it('keep only the hash of the cookie id, and answer 503 with what to do while the store is down', async () => {
    const store = new FlakyStore();
    const url = await serve(store);
    const res = await fetch(`${url}/ui/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: ADMIN }) });
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const id = cookie.split('=')[1]!;
    expect(store.keys).toHaveLength(1);
    expect(store.keys[0]).not.toBe(id);
    expect(store.keys[0]).toMatch(/^[\w-]{43}$/);
    expect(await (await fetch(`${url}/admin/api/x`, { headers: { cookie } })).json()).toEqual({ admin: expect.stringMatching(/^admin:/) });

    store.down = true;
    for (const [path, init] of [
      ['/ui/api/session', { headers: { cookie } }],
      ['/admin/api/x', { headers: { cookie } }],
      ['/ui/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: ADMIN }) }],
    ] as const) {
      const r = await fetch(`${url}${path}`, init);
      expect([path, r.status]).toEqual([path, 503]);
      expect(((await r.json()) as { message: string }).message).toBe('Console sessions are kept in PostgreSQL at db.test, which does not answer; retry shortly, or send the admin token as Authorization: Bearer.');
    }
    store.down = false;
    expect((await fetch(`${url}/ui/api/session`, { headers: { cookie } })).status).toBe(200);
  });
});

/** While Redis or PostgreSQL does not answer: refusals (failMode closed) or logged admission (open), /readyz, and recovery without restart. */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createCore, type Core } from '../../src/app.js';
import { createHttpFront } from '../../src/downstream/http-app.js';
import { refusalResponse } from '../../src/downstream/render/mcp.js';
import { SharedStateWatch, type FailMode } from '../../src/gateway/shared-state.js';
import type { Step } from '../../src/gateway/types.js';
import { openStores, redactUrl, type SharedHealth } from '../../src/stores/open.js';
import { loadGatewayConfig } from '../../src/config/index.js';
import { scratch } from '../helpers/gateway.js';
import { freePort, sharedStoresUnavailable, stopTestRedis, testRedis } from '../helpers/shared-stores.js';
import { settled } from '../helpers/sync.js';

const step = { kind: 'tools/call', workflowId: 'wf', caller: { agentId: 'a', principal: 'p', chain: ['a'], via: 'apikey' } } as unknown as Step;

function watched(failMode: FailMode) {
  let redis: SharedHealth = { name: 'redis', target: 'redis://127.0.0.1:6390/0', ok: true };
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const watch = new SharedStateWatch({ health: () => [redis, { name: 'postgres', target: 'postgres://127.0.0.1:5432/sy', ok: true }], failMode, log });
  return {
    watch,
    lines,
    down: () => void (redis = { ...redis, ok: false, error: 'connect ECONNREFUSED 127.0.0.1:6390' }),
    up: () => void (redis = { ...redis, ok: true, error: undefined }),
    check: () => watch.guard(step, {} as never),
  };
}

describe('failMode closed', () => {
  it('refuses every call while Redis is down, naming it and what to do, and admits calls again once it answers', () => {
    const w = watched('closed');
    expect(w.check()).toBeUndefined();
    w.down();
    const refusals = [w.check(), w.check(), w.check()];
    for (const r of refusals) {
      expect(r).toMatchObject({ reason: 'upstream_unavailable', data: { unavailable: ['redis'], failMode: 'closed' } });
      expect((r as { message: string }).message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:6390\/0 \(connect ECONNREFUSED.*failMode is closed.*retry in a few seconds/);
    }
    // The Redis client logs the outage itself; the watch adds nothing in closed mode.
    expect(w.lines).toEqual([]);
    w.up();
    expect(w.check()).toBeUndefined();
    expect(w.watch.down()).toEqual([]);
  });

  it('renders as a JSON-RPC error with the machine reason in error.data', () => {
    const w = watched('closed');
    w.down();
    const rpc = refusalResponse(7, settled(w.check())!, 'wf') as { error: { code: number; message: string; data: Record<string, unknown> } };
    expect(rpc.error.code).toBe(-32030);
    expect(rpc.error.data).toMatchObject({ reason: 'upstream_unavailable', unavailable: ['redis'] });
    expect(rpc.error.message).toMatch(/shared state is unreachable/);
  });
});

describe('failMode open', () => {
  it('admits calls while Redis is down, with one warning per outage and, once back, how many were admitted', () => {
    const w = watched('open');
    w.down();
    expect([w.check(), w.check(), w.check()]).toEqual([undefined, undefined, undefined]);
    expect(w.lines.map((l) => l.level)).toEqual([40]);
    expect(w.lines[0]!.msg).toMatch(/^admitting calls while Redis at .* is unreachable \(state\.failMode: open\)/);
    w.up();
    expect(w.check()).toBeUndefined();
    expect(w.check()).toBeUndefined();
    expect(w.lines).toHaveLength(2);
    expect(w.lines[1]).toMatchObject({ level: 30, admittedWhileDown: 3, msg: 'Redis answers again; 3 call(s) were admitted without shared state meanwhile' });
    w.down();
    w.check();
    expect(w.lines).toHaveLength(3);
  });
});

describe('PostgreSQL down', () => {
  it('refuses calls in failMode open too: without it no step can be numbered or recorded', () => {
    const watch = new SharedStateWatch({ health: () => [{ name: 'postgres', target: 'postgres://db:5432/sy', ok: false, error: 'timeout' }], failMode: 'open', log: pino({ level: 'silent' }) });
    const r = watch.guard(step, {} as never);
    expect(r).toMatchObject({ reason: 'upstream_unavailable', data: { unavailable: ['postgres'], failMode: 'open' } });
    expect((r as { message: string }).message).toMatch(/PostgreSQL at postgres:\/\/db:5432\/sy \(timeout\).*no step can be recorded without PostgreSQL/);
  });
});

describe('openStores', () => {
  const dirs: string[] = [];
  const configWith = (yaml: string) => {
    const dir = scratch('open-stores-');
    dirs.push(dir);
    for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'gateway.yaml'), yaml);
    const loaded = loadGatewayConfig(join(dir, 'gateway.yaml'), { serversDir: join(dir, 'servers.d'), agentsDir: join(dir, 'agents.d'), dataDir: join(dir, 'data') });
    expect(loaded.problems).toEqual([]);
    return loaded.config;
  };

  it('opens the embedded stores by default, with no shared server to report', async () => {
    const stores = await openStores({ config: configWith('{}\n'), log: pino({ level: 'silent' }) });
    expect(stores.backends).toEqual({ state: 'embedded', store: 'sqlite' });
    expect(stores.health()).toEqual([]);
    expect(await stores.counters.reserve({ workflowId: 'w', agentId: 'a', amounts: { calls: 1 }, limits: [{ subject: 'workflow', window: 'total', dimension: 'calls', max: 1, mode: 'reserve' }] })).toBeUndefined();
    expect(await stores.counters.reserve({ workflowId: 'w', agentId: 'a', amounts: { calls: 1 }, limits: [{ subject: 'workflow', window: 'total', dimension: 'calls', max: 1, mode: 'reserve' }] })).toMatchObject({ used: 1 });
    // Live sub-agents are counted in this process; sessions are not shared without Redis.
    expect(await stores.liveChildren.reserve('p', 'c1', Date.now() + 60_000, 1)).toBeUndefined();
    expect(await stores.liveChildren.reserve('p', 'c2', Date.now() + 60_000, 1)).toBe(1);
    expect(stores.sessions).toBeUndefined();
    expect(await stores.close()).toBe(0);
  });

  it.skipIf(sharedStoresUnavailable())('opens Redis alone for the fast state, keeping the durable stores embedded, and says so', async () => {
    const redis = await testRedis();
    const lines: string[] = [];
    const stores = await openStores({ config: configWith(`state:\n  redis: ${redis.url}\n`), log: pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }) });
    try {
      expect(stores.backends).toEqual({ state: 'redis', store: 'sqlite' });
      expect(stores.health()).toMatchObject([{ name: 'redis', ok: true }]);
      expect(lines.map((l) => JSON.parse(l).msg)).toContainEqual(expect.stringMatching(/^state\.redis without store\.postgres: .*set store\.postgres to share them$/));
      // A second replica on the same Redis shares the live sub-agents and the session directory, under one replica id each.
      const other = await openStores({ config: configWith(`state:\n  redis: ${redis.url}\n`), log: pino({ level: 'silent' }) });
      try {
        const parent = `p-${randomUUID()}`;
        expect(await stores.liveChildren.reserve(parent, 'c1', Date.now() + 60_000, 1)).toBeUndefined();
        expect(await other.liveChildren.reserve(parent, 'c2', Date.now() + 60_000, 1)).toBe(1);
        expect(stores.sessions?.replicaId).toBe(stores.replicaId);
        const sessionId = randomUUID();
        await stores.sessions!.claim([{ sessionId, principal: 'digest' }], 60_000);
        expect(await other.sessions!.lookup(sessionId)).toMatchObject({ replica: stores.replicaId, principal: 'digest' });
      } finally {
        await other.close();
      }
    } finally {
      await stores.close();
      await stopTestRedis();
    }
  });

  it('fails to start with what to do when PostgreSQL does not answer, and no password in the message', async () => {
    const [redisPort, pgPort] = [await freePort(), await freePort()];
    const config = configWith(`state:\n  redis: redis://127.0.0.1:${redisPort}/0\nstore:\n  postgres: postgres://sy:secret@127.0.0.1:${pgPort}/sy\n`);
    const err = await openStores({ config, log: pino({ level: 'silent' }) }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(new RegExp(`^store\\.postgres: cannot reach PostgreSQL at postgres://sy:\\*\\*\\*@127\\.0\\.0\\.1:${pgPort}/sy: .*start it or fix store\\.postgres in gateway\\.yaml, then start the gateway again$`));
    expect(err?.message.match(/start it/g)).toHaveLength(1); // what to do, once
    expect(err?.message).not.toContain('secret');
  }, 20_000);

  it('never puts a password of a store address in a message', () => {
    expect(redactUrl('redis://user:s3cret@cache:6379/0')).toBe('redis://user:***@cache:6379/0');
    expect(redactUrl('postgres://sy:pw@db:5432/switchyard?sslmode=require')).toBe('postgres://sy:***@db:5432/switchyard?sslmode=require');
    expect(redactUrl('not a url')).toBe('(unparseable address)');
  });
});

describe('/readyz with shared stores', () => {
  let core: Core | undefined;
  afterAll(async () => {
    await core?.close();
  });

  it('is red with the name of what is down, and green again once it answers, in the same process', async () => {
    const dir = scratch('readyz-shared-');
    for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'gateway.yaml'), '{}\n');
    core = await createCore({ configPath: join(dir, 'gateway.yaml'), overrides: { port: 0, host: '127.0.0.1', serversDir: join(dir, 'servers.d'), agentsDir: join(dir, 'agents.d'), dataDir: join(dir, 'data') }, logger: pino({ level: 'silent' }) });
    let ok = false;
    // The stores' health is what a Redis client reports; here it flips on demand.
    core.stores.health = () => [{ name: 'redis', target: 'redis://127.0.0.1:1/0', ok, ...(ok ? {} : { error: 'connect ECONNREFUSED' }) }];
    const c = core;
    const { server } = createHttpFront({ ...c, localMode: () => c.localMode });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
    try {
      const red = await fetch(url);
      expect(red.status).toBe(503);
      const body = (await red.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ status: 'not ready', unavailable: ['redis'] });
      expect(JSON.stringify(body)).not.toContain('ECONNREFUSED');
      ok = true;
      const green = await fetch(url);
      expect(green.status).toBe(200);
      expect(await green.json()).not.toHaveProperty('unavailable');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

// delegation.maxChildren over one Redis: two gateways ("replicas", each with its own data dir, signing keys and
// token store) count one parent's live children together; a slot is taken before signing, given back when signing
// fails or the child is revoked, and counted again from the token store after a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/audit/index.js';
import { MemoryWorkflows } from '../../src/gateway/memory-workflows.js';
import { Authenticator } from '../../src/identity/authenticate.js';
import { exchange, isExchangeFailure, type DelegationDeps, type ExchangeResult } from '../../src/identity/delegation.js';
import { openDelegation, type DelegationRuntime } from '../../src/identity/delegation-runtime.js';
import { JwtVerifier } from '../../src/identity/jwt.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { mintError } from '../../src/downstream/oauth-token.js';
import { failOpenLiveChildren } from '../../src/stores/fail-open.js';
import type { LiveChildrenStore } from '../../src/stores/live-children.js';
import { openRedis, RedisUnavailableError } from '../../src/stores/redis/client.js';
import { RedisLiveChildren } from '../../src/stores/redis/live-children.js';
import { SqliteDelegationTokens, SqliteSlices } from '../../src/stores/sqlite/delegation.js';
import { startRedis, stopTestRedis } from '../helpers/shared-stores.js';
import { agent, agentMap, AUDIENCE, ISSUER, makeKey, sign, writeJwksFile, type TestKey } from '../identity/helpers.js';
import { closeRedisClients, quietLog, redisClientFor, redisReady, redisSkip } from '../stores/redis-factories.js';

const GATEWAY = 'http://127.0.0.1:9';
const root = agent('root', { credentials: { jwt: { sub: 'svc-root' }, apiKeys: [] }, delegation: { agents: ['worker'], maxDepth: 1, maxChildren: 2 } });
const worker = agent('worker', { tools: { allow: ['*'], deny: [], rules: [] } });

const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await closeRedisClients();
});
let issuerKey: TestKey;
let jwksFile: string;
beforeAll(async () => {
  await redisReady();
  issuerKey = await makeKey('issuer-children', 'ES256');
  jwksFile = await writeJwksFile(issuerKey);
});
afterAll(stopTestRedis);

interface Replica {
  runtime: DelegationRuntime;
  dataDir: string;
  ask(subjectToken: string, sign?: DelegationDeps['sign']): Promise<ExchangeResult>;
}

/** Live children in Redis under the prefix of `shared`: replicas passing the same name share one count. */
const onRedis = (shared: string) => new RedisLiveChildren({ client: redisClientFor(shared) });

/** One gateway's delegation: its own data dir and token store, the live children where `children` keeps them. */
async function replica(children: LiveChildrenStore, dataDir = mkdtempSync(join(tmpdir(), 'switchyard-kids-'))): Promise<Replica> {
  const db = openDatabase({ dataDir });
  cleanups.push(() => {
    closeDatabase(db);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const registry = new AgentRegistry(agentMap(root, worker));
  const verifier = new JwtVerifier([{ issuer: ISSUER, audience: AUDIENCE, jwksFile }]);
  const authenticator = new Authenticator({ verifier, registry });
  const stores = { tokens: new SqliteDelegationTokens(db), slices: new SqliteSlices(db), liveChildren: children };
  const runtime = await openDelegation({ config: { dataDir, delegation: { maxTokenSeconds: 600 } }, stores, agents: registry, localMode: () => false });
  runtime.trust(verifier, GATEWAY);
  authenticator.setRevocationCheck(runtime.isRevoked);
  const workflows = new MemoryWorkflows();
  const deps: DelegationDeps = {
    authenticate: (i) => authenticator.authenticate(i),
    agents: registry,
    sign: (c) => runtime.keys.sign(c),
    store: runtime.store,
    limits: runtime.limits,
    workflows,
    issuer: () => GATEWAY,
    maxTokenSeconds: () => 600,
    sinks: () => [],
  };
  return {
    runtime,
    dataDir,
    ask: (subjectToken, signWith) =>
      exchange({ subjectToken, subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token', audience: 'worker' }, signWith ? { ...deps, sign: signWith } : deps),
  };
}

const rootToken = () => sign({ sub: 'svc-root', jti: randomUUID() }, { key: issuerKey, nowSec: Math.floor(Date.now() / 1000), ttlSec: 3600 });
const jtiOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;

function split(results: ExchangeResult[]) {
  const minted = results.filter((r) => !isExchangeFailure(r));
  const refused = results.filter(isExchangeFailure);
  return { minted: minted as Array<Exclude<ExchangeResult, { error: string }>>, refused };
}

describe.skipIf(redisSkip)('delegation.maxChildren across replicas on one Redis', () => {
  it('6 concurrent exchanges on two replicas for a parent with maxChildren 2 mint exactly 2 tokens', async () => {
    const shared = `kids-${randomUUID()}`;
    const [a, b] = [await replica(onRedis(shared)), await replica(onRedis(shared))];
    const parent = await rootToken();
    const { minted, refused } = split(await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).ask(parent))));
    expect(minted).toHaveLength(2);
    expect(refused).toHaveLength(4);
    for (const r of refused) {
      expect(r).toMatchObject({ error: 'invalid_target', status: 400 });
      expect(r.error_description).toMatch(/already has 2 live sub-agents \(at most 2\)/);
    }
    expect(await a.runtime.limits.liveChildren(jtiOf(parent))).toBe(2);
    expect(await b.runtime.limits.liveChildren(jtiOf(parent))).toBe(2);
  });

  it('a child revoked on one replica frees its slot for an exchange on the other', async () => {
    const shared = `kids-${randomUUID()}`;
    const [a, b] = [await replica(onRedis(shared)), await replica(onRedis(shared))];
    const parent = await rootToken();
    const first = await a.ask(parent);
    const second = await a.ask(parent);
    if (isExchangeFailure(first) || isExchangeFailure(second)) throw new Error('the first two children should be minted');
    expect(await b.ask(parent)).toMatchObject({ error: 'invalid_target' });
    expect(await a.runtime.revoke(jtiOf(first.access_token))).toMatchObject({ revoked: [jtiOf(first.access_token)] });
    const third = await b.ask(parent);
    expect(isExchangeFailure(third)).toBe(false);
    expect(await b.ask(parent)).toMatchObject({ error: 'invalid_target' });
  });

  it('a token that could not be signed gives its slot back', async () => {
    const shared = `kids-${randomUUID()}`;
    const a = await replica(onRedis(shared));
    const parent = await rootToken();
    await expect(a.ask(parent, () => Promise.reject(new Error('signing key unreadable')))).rejects.toThrow(/signing key unreadable/);
    expect(await a.runtime.limits.liveChildren(jtiOf(parent))).toBe(0);
    const { minted } = split([await a.ask(parent), await a.ask(parent)]);
    expect(minted).toHaveLength(2);
  });

  it('after a restart onto an emptied Redis, the live tokens of the store count again', async () => {
    const a = await replica(onRedis(`kids-${randomUUID()}`));
    const parent = await rootToken();
    const { minted } = split([await a.ask(parent), await a.ask(parent)]);
    expect(minted).toHaveLength(2);
    // The same data dir, a Redis prefix with nothing in it: the count comes back from the token store.
    const db = openDatabase({ dataDir: a.dataDir });
    cleanups.push(() => closeDatabase(db));
    const registry = new AgentRegistry(agentMap(root, worker));
    const fresh = new RedisLiveChildren({ client: redisClientFor(`kids-${randomUUID()}`) });
    const restarted = await openDelegation({
      config: { dataDir: a.dataDir, delegation: { maxTokenSeconds: 600 } },
      stores: { tokens: new SqliteDelegationTokens(db), slices: new SqliteSlices(db), liveChildren: fresh },
      agents: registry,
      localMode: () => false,
    });
    expect(await restarted.limits.liveChildren(jtiOf(parent))).toBe(2);
    expect(await fresh.count(jtiOf(parent))).toBe(2);
  });

  it('Redis down: failMode closed answers 503 to retry, minting nothing; failMode open mints the child uncounted', async () => {
    const server = await startRedis();
    const client = openRedis({ url: server.url, log: quietLog });
    try {
      await client.ready();
      const store = new RedisLiveChildren({ client });
      const closed = await replica(store);
      const open = await replica(failOpenLiveChildren(store, (err) => err instanceof RedisUnavailableError));
      const parent = await rootToken();
      await server.stop();
      const err = await closed.ask(parent).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(RedisUnavailableError);
      expect(mintError(err)).toMatchObject({ status: 503, error: 'temporarily_unavailable', description: expect.stringMatching(/unreachable.*retry once Redis is back$/) });
      expect(await closed.runtime.store.liveTokens()).toEqual([]);
      expect(isExchangeFailure(await open.ask(parent))).toBe(false);
      expect(mintError(new Error('disk full'))).toMatchObject({ status: 500, error: 'server_error' });
    } finally {
      await client.close();
      await server.close();
    }
  }, 30_000);
});

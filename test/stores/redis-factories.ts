/**
 * Redis for the contract suites: `await redisReady()` in beforeAll starts (or finds) the test server, then
 * `redisClientFor(dir)` opens a client whose key prefix belongs to that store dir (a durable store reopened on the same
 * dir sees its keys again). `closeRedisClients()` in afterEach, `stopTestRedis()` in afterAll.
 */
import pino from 'pino';
import { openRedis, type RedisClient } from '../../src/stores/redis/client.js';
import { sharedStoresUnavailable, testRedis } from '../helpers/shared-stores.js';

export const redisSkip = sharedStoresUnavailable();
if (redisSkip) console.warn(`Redis store tests skipped: ${redisSkip}`);

let url: string | undefined;
let base = '';
const prefixes = new Map<string, string>();
const clients: RedisClient[] = [];
export const quietLog = pino({ level: 'silent' });

export async function redisReady(): Promise<void> {
  if (redisSkip) return;
  const r = await testRedis();
  url = r.url;
  base = r.keyPrefix;
}

export function redisClientFor(dir: string): RedisClient {
  if (!url) throw new Error('call redisReady() in beforeAll first');
  let prefix = prefixes.get(dir);
  if (!prefix) prefixes.set(dir, (prefix = `${base}${prefixes.size}:`));
  const client = openRedis({ url, keyPrefix: prefix, log: quietLog });
  clients.push(client);
  return client;
}

export async function closeRedisClients(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.close()));
}

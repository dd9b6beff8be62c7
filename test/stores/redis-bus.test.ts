// The control bus over Redis pub/sub between two replicas, and its subscriptions coming back after Redis restarts.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ControlMessage } from '../../src/stores/bus.js';
import { RedisControlBus } from '../../src/stores/redis/bus.js';
import { openRedis, type RedisClient } from '../../src/stores/redis/client.js';
import { sharedStoresUnavailable, startRedis, type ThrowawayRedis } from '../helpers/shared-stores.js';

const skip = sharedStoresUnavailable();
if (skip) console.warn(`Redis bus tests skipped: ${skip}`);

const quiet = pino({ level: 'silent' });
const clients: RedisClient[] = [];
const buses: RedisControlBus[] = [];
let server: ThrowawayRedis | undefined;

function bus(url: string, replicaId: string): RedisControlBus {
  const client = openRedis({ url, keyPrefix: 'bus-test:', log: quiet });
  clients.push(client);
  const b = new RedisControlBus({ client, replicaId });
  buses.push(b);
  return b;
}

/** The next message of a topic a bus hears. */
function next(b: RedisControlBus, topic: ControlMessage['topic']): Promise<ControlMessage> {
  return new Promise((resolve) => {
    const stop = b.subscribe(topic, (m) => {
      stop();
      resolve(m);
    });
  });
}

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.close()));
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

describe.skipIf(skip)('Redis control bus', () => {
  it('a message published on one replica reaches the other, and the publisher hears its own', async () => {
    server = await startRedis();
    const a = bus(server.url, 'replica-a');
    const b = bus(server.url, 'replica-b');
    const heardByB = next(b, 'revocation');
    const heardByA = next(a, 'revocation');
    const other = next(b, 'workflow-state');
    await Promise.all([a.listening(), b.listening()]);
    await a.publish('revocation', { jti: 'tok-1' });
    expect(await heardByB).toEqual({ topic: 'revocation', data: { jti: 'tok-1' }, from: 'replica-a' });
    expect((await heardByA).from).toBe('replica-a');
    await b.publish('workflow-state', { workflowId: 'wf', state: 'paused' });
    expect((await other).data).toEqual({ workflowId: 'wf', state: 'paused' });
  });

  it('after Redis restarts, subscriptions resume without rebuilding the bus', async () => {
    server = await startRedis();
    const a = bus(server.url, 'replica-a');
    const b = bus(server.url, 'replica-b');
    const heard: ControlMessage[] = [];
    b.subscribe('approval', (m) => heard.push(m));
    await Promise.all([a.listening(), b.listening()]);
    await server.stop();
    await expect(a.publish('approval', { id: 'lost' })).rejects.toThrow(/unreachable/);
    expect(b.health().ok).toBe(false);
    await server.start();
    await clients[0]!.ready(10_000);
    const again = next(b, 'approval');
    await b.listening();
    await a.publish('approval', { id: 'ap-1', outcome: 'approved' });
    expect((await again).data).toEqual({ id: 'ap-1', outcome: 'approved' });
    expect(heard.map((m) => m.data.id)).toEqual(['ap-1']);
    expect(b.health()).toEqual({ ok: true });
  });

  it('ignores what is not a bus message on its channels', async () => {
    server = await startRedis();
    const a = bus(server.url, 'replica-a');
    const heard: ControlMessage[] = [];
    a.subscribe('session', (m) => heard.push(m));
    const after = next(a, 'session');
    await a.listening();
    await clients[0]!.call((r) => r.publish('bus-test:bus:session', 'not json'));
    await clients[0]!.call((r) => r.publish('bus-test:bus:session', JSON.stringify({ data: 'no sender' })));
    await a.publish('session', { id: 's-1' });
    await after;
    expect(heard.map((m) => m.data)).toEqual([{ id: 's-1' }]);
  });
});

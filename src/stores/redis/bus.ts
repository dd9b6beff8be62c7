/**
 * The control bus over Redis pub/sub, for replicas: `new RedisControlBus({ client, replicaId? })`. Every topic is
 * one channel under the client's key prefix (`<prefix>bus:<topic>`); a dedicated subscriber connection listens and
 * subscribes again by itself after a reconnect. Publishing while Redis is down fails at once: messages are hints,
 * and replicas catch up from the shared store (src/stores/bus.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ControlBus, ControlHandler, ControlMessage, ControlTopic } from '../bus.js';
import type { RedisClient, StoreHealth } from './client.js';

export interface RedisControlBusOptions {
  client: RedisClient;
  /** This replica's id; default a random UUID. */
  replicaId?: string;
}

const TOPICS: ReadonlySet<string> = new Set<ControlTopic>(['workflow-state', 'revocation', 'delegation-token', 'approval', 'signing-keys', 'session']);

export class RedisControlBus implements ControlBus {
  readonly replicaId: string;
  private readonly client: RedisClient;
  private readonly sub: Redis;
  private readonly handlers = new Map<ControlTopic, Set<ControlHandler>>();
  private readonly prefix: string;

  constructor(opts: RedisControlBusOptions) {
    this.client = opts.client;
    this.replicaId = opts.replicaId ?? randomUUID();
    this.prefix = opts.client.key('bus:');
    // Queued until connected and resubscribed after every reconnect: a subscription outlives an outage.
    this.sub = opts.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    this.sub.on('message', (channel: string, raw: string) => this.deliver(channel, raw));
  }

  async publish(topic: ControlTopic, data: Record<string, unknown>): Promise<void> {
    const raw = JSON.stringify({ from: this.replicaId, data });
    await this.client.call((r) => r.publish(this.prefix + topic, raw));
  }

  subscribe(topic: ControlTopic, handler: ControlHandler): () => void {
    let set = this.handlers.get(topic);
    if (!set) {
      this.handlers.set(topic, (set = new Set()));
      this.sub.subscribe(this.prefix + topic).catch(() => {}); // retried by autoResubscribe once connected
    }
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  /**
   * Resolves once the subscriber connection listens to every subscribed topic: the (re)subscriptions were sent on
   * connect, so a PING answered after them on the same connection means Redis has them (tests wait on it).
   */
  async listening(): Promise<void> {
    if (this.sub.status !== 'ready') await new Promise<void>((resolve) => this.sub.once('ready', () => resolve()));
    await this.sub.ping();
  }

  health(): StoreHealth {
    if (this.sub.status === 'ready') return this.client.health();
    return { ok: false, error: `the control bus subscriber of Redis at ${this.client.where} is ${this.sub.status}` };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    await this.sub.quit().catch(() => this.sub.disconnect());
  }

  private deliver(channel: string, raw: string): void {
    const topic = channel.slice(this.prefix.length);
    if (!channel.startsWith(this.prefix) || !TOPICS.has(topic)) return;
    const set = this.handlers.get(topic as ControlTopic);
    if (!set || set.size === 0) return;
    let parsed: { from?: unknown; data?: unknown };
    try {
      parsed = JSON.parse(raw) as { from?: unknown; data?: unknown };
    } catch {
      return; // not ours: a hint that cannot be read is dropped, the store is the truth
    }
    if (typeof parsed.from !== 'string' || typeof parsed.data !== 'object' || parsed.data === null) return;
    const message: ControlMessage = { topic: topic as ControlTopic, data: parsed.data as Record<string, unknown>, from: parsed.from };
    for (const h of [...set]) h(message);
  }
}

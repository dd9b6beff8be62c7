/** The control bus of a single process: every message reaches this process's subscribers, synchronously. */
import { randomUUID } from 'node:crypto';
import type { ControlBus, ControlHandler, ControlTopic } from '../bus.js';

export class MemoryControlBus implements ControlBus {
  readonly replicaId: string;
  private readonly handlers = new Map<ControlTopic, Set<ControlHandler>>();

  constructor(replicaId: string = randomUUID()) {
    this.replicaId = replicaId;
  }

  publish(topic: ControlTopic, data: Record<string, unknown>): void {
    for (const h of [...(this.handlers.get(topic) ?? [])]) h({ topic, data, from: this.replicaId });
  }

  subscribe(topic: ControlTopic, handler: ControlHandler): () => void {
    let set = this.handlers.get(topic);
    if (!set) this.handlers.set(topic, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  close(): void {
    this.handlers.clear();
  }
}

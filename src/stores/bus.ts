/**
 * The control bus: how one replica tells every other that something changed which they serve from a local copy
 * (a workflow paused or killed, a token revoked, an approval decided, a signing key rotated). Messages are hints to
 * re-read the shared store, never the only copy of a fact: a replica that missed one catches up from the store.
 * The memory bus serves one process (the default); the Redis bus (pub/sub) serves replicas.
 */
import type { Awaitable } from './types.js';

export type ControlTopic = 'workflow-state' | 'revocation' | 'delegation-token' | 'approval' | 'signing-keys' | 'session';

export interface ControlMessage {
  topic: ControlTopic;
  /** What changed, small and JSON-serializable (ids and the new state, not whole records). */
  data: Record<string, unknown>;
  /** The replica that published it; a subscriber may skip its own messages. */
  from: string;
}

export type ControlHandler = (message: ControlMessage) => void;

export interface ControlBus {
  /** This replica's id (unique per process). */
  readonly replicaId: string;
  /** Send to every replica, this one included; resolves once the bus accepted it. */
  publish(topic: ControlTopic, data: Record<string, unknown>): Awaitable<void>;
  /** Hear every message of a topic; returns a function that stops listening. */
  subscribe(topic: ControlTopic, handler: ControlHandler): () => void;
  close(): Awaitable<void>;
}

/**
 * The events of a session's server-sent stream, kept so a client that reconnects with Last-Event-ID gets what it
 * missed (the MCP SDK's EventStore, per stream). Ids count up from 1 within a stream; a stream keeps its newest events.
 */
import type { Awaitable } from './types.js';

export interface StoredEvent {
  id: number;
  /** The serialized message, as framed on the wire. */
  data: string;
}

export interface StreamEventStore {
  /** Append an event; resolves to its id. */
  append(stream: string, data: string): Awaitable<number>;
  /** Events after `afterId`, oldest first (those still kept). */
  after(stream: string, afterId: number): Awaitable<StoredEvent[]>;
  /** Forget a stream (its session ended). */
  drop(stream: string): Awaitable<void>;
}

/** Events kept per stream by default: enough for a reconnect, bounded per session. */
export const DEFAULT_EVENTS_PER_STREAM = 500;

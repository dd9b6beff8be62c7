/** Stream events in process memory: the newest `perStream` events of each stream. */
import { DEFAULT_EVENTS_PER_STREAM, type StoredEvent, type StreamEventStore } from '../stream-events.js';

interface Stream {
  seq: number;
  events: StoredEvent[];
}

export class MemoryStreamEvents implements StreamEventStore {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly perStream = DEFAULT_EVENTS_PER_STREAM) {}

  append(stream: string, data: string): number {
    let s = this.streams.get(stream);
    if (!s) this.streams.set(stream, (s = { seq: 0, events: [] }));
    const ev = { id: ++s.seq, data };
    s.events.push(ev);
    if (s.events.length > this.perStream) s.events.shift();
    return ev.id;
  }

  after(stream: string, afterId: number): StoredEvent[] {
    const events = this.streams.get(stream)?.events ?? [];
    return events.filter((e) => e.id > afterId);
  }

  drop(stream: string): void {
    this.streams.delete(stream);
  }
}

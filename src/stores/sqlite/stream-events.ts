/** Stream events in the gateway database (table stream_events, migration room 'streams'), newest `perStream` per stream. */
import { DEFAULT_EVENTS_PER_STREAM, type StoredEvent, type StreamEventStore } from '../stream-events.js';
import { registerMigration, type Db } from './db.js';

registerMigration(
  'streams',
  1,
  `CREATE TABLE IF NOT EXISTS stream_events (
     stream TEXT    NOT NULL,
     id     INTEGER NOT NULL,
     data   TEXT    NOT NULL,
     PRIMARY KEY (stream, id)
   );`,
);

export class SqliteStreamEvents implements StreamEventStore {
  private readonly appendTx: (stream: string, data: string) => number;
  private readonly select;
  private readonly remove;

  constructor(db: Db, private readonly perStream = DEFAULT_EVENTS_PER_STREAM) {
    const last = db.prepare<[string], { id: number | null }>('SELECT max(id) AS id FROM stream_events WHERE stream = ?');
    const insert = db.prepare('INSERT INTO stream_events (stream, id, data) VALUES (?, ?, ?)');
    const trim = db.prepare('DELETE FROM stream_events WHERE stream = ? AND id <= ?');
    this.appendTx = db.transaction((stream: string, data: string) => {
      const id = (last.get(stream)?.id ?? 0) + 1;
      insert.run(stream, id, data);
      if (id > this.perStream) trim.run(stream, id - this.perStream);
      return id;
    });
    this.select = db.prepare<[string, number], StoredEvent>('SELECT id, data FROM stream_events WHERE stream = ? AND id > ? ORDER BY id');
    this.remove = db.prepare('DELETE FROM stream_events WHERE stream = ?');
  }

  append(stream: string, data: string): number {
    return this.appendTx(stream, data);
  }

  after(stream: string, afterId: number): StoredEvent[] {
    return this.select.all(stream, afterId);
  }

  drop(stream: string): void {
    this.remove.run(stream);
  }
}

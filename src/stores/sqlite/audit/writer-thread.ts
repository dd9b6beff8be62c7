/**
 * The audit writer thread: its own connection to the gateway database, on which it redacts, hashes and commits the
 * batches the main thread posts, answering each once it is committed (or failed). Started by thread-writer.ts.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { compileRedactor } from '../../../audit/redact.js';
import { BatchWriter, type WriteJob } from './batch.js';

export interface WriterThreadData {
  file: string;
  synchronous: 'FULL' | 'NORMAL';
  busyTimeoutMs: number;
  redact: readonly string[];
  maxArgsLength: number;
  key: Uint8Array | undefined;
  port: MessagePort;
  /** Bumped (and notified) after every answer, so a main thread blocked in Atomics.wait wakes up. */
  signal: Int32Array;
}

export type WriterRequest = { seq: number; job: WriteJob; busyTimeoutMs: number } | { seq: number; close: true };
export type WriterReply = { seq: number; error?: string };

const data = workerData as WriterThreadData;
const db = new Database(data.file, { fileMustExist: true });
db.pragma(`synchronous = ${data.synchronous}`);
let busyTimeoutMs = data.busyTimeoutMs;
db.pragma(`busy_timeout = ${busyTimeoutMs}`);
const writer = new BatchWriter(db, {
  redactor: compileRedactor(data.redact),
  maxArgsLength: data.maxArgsLength,
  key: data.key ? Buffer.from(data.key.buffer, data.key.byteOffset, data.key.byteLength) : undefined,
});

function answer(reply: WriterReply): void {
  data.port.postMessage(reply);
  Atomics.add(data.signal, 0, 1);
  Atomics.notify(data.signal, 0);
}

data.port.on('message', (req: WriterRequest) => {
  if ('close' in req) {
    db.close();
    answer({ seq: req.seq });
    data.port.close();
    return;
  }
  try {
    // The writer waits for a lock as long as the connection it writes for would.
    if (req.busyTimeoutMs !== busyTimeoutMs) db.pragma(`busy_timeout = ${(busyTimeoutMs = req.busyTimeoutMs)}`);
    writer.write(req.job);
    answer({ seq: req.seq });
  } catch (err) {
    answer({ seq: req.seq, error: (err as Error).message });
  }
});

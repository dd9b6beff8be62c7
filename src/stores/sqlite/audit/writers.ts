/**
 * Where the audit store's flush transactions run: inline on the main connection, or on a writer thread with its own
 * connection (the default for a database file), so inserts, their indexes and the FTS triggers leave the event loop.
 */
import { existsSync } from 'node:fs';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { RowFormat } from '../../../audit/rows.js';
import type { Logger } from '../../../telemetry/logger.js';
import type Database from 'better-sqlite3';
import type { Db } from '../db.js';
import { BatchWriter, type WriteJob } from './batch.js';
import type { WriterReply, WriterRequest, WriterThreadData } from './writer-thread.js';

export type WriteDone = (err: Error | undefined) => void;

export interface AuditWriter {
  /** Whether jobs are written off the event loop (and may queue up behind one another). */
  readonly background: boolean;
  /** Write one job; `done` runs once it is committed or has failed (synchronously for the inline writer). */
  submit(job: WriteJob, done: WriteDone): void;
  /** Run the `done` of every answer that has already arrived, without waiting. */
  poll(): void;
  /** Block until every submitted job is answered and its `done` has run. */
  drain(): void;
  /** Stop writing; the connection is left to its owner (inline) or closed (thread). */
  close(): void;
}

export class InlineWriter implements AuditWriter {
  readonly background = false;
  private readonly batch: BatchWriter;

  constructor(db: Db, format: RowFormat) {
    this.batch = new BatchWriter(db, format);
  }

  submit(job: WriteJob, done: WriteDone): void {
    let error: Error | undefined;
    try {
      this.batch.write(job);
    } catch (err) {
      error = err as Error;
    }
    done(error);
  }

  poll(): void {}
  drain(): void {}
  close(): void {}
}

/** Longest a blocking read waits for the writer thread before the batch counts as failed. */
const DRAIN_LIMIT_MS = 30_000;

function threadUrl(): URL {
  const here = new URL('./writer-thread.js', import.meta.url);
  // Under the test runner this module is the TypeScript source; the thread runs the compiled copy in dist/.
  return existsSync(here) ? here : new URL(here.href.replace(/\/src\/(?=stores\/sqlite\/audit\/)/, '/dist/'));
}

export interface ThreadWriterOptions {
  format: RowFormat;
  redact: readonly string[];
  logger?: Pick<Logger, 'warn' | 'error'>;
}

export class ThreadWriter implements AuditWriter {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private readonly pending = new Map<number, WriteDone>();
  private readonly fallback: InlineWriter;
  /** Prepared once: db.pragma() compiles its statement on every call, and this is read at every submit. */
  private readonly busyTimeoutQuery: Database.Statement<[], number>;
  private seq = 0;
  private dead: string | undefined;

  get background(): boolean {
    return this.dead === undefined;
  }

  constructor(
    private readonly db: Db,
    private readonly opts: ThreadWriterOptions,
  ) {
    this.fallback = new InlineWriter(db, opts.format);
    this.busyTimeoutQuery = db.prepare<[], number>('PRAGMA busy_timeout').pluck();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const key = opts.format.key;
    const data: WriterThreadData = {
      file: db.name,
      synchronous: Number(db.pragma('synchronous', { simple: true })) >= 2 ? 'FULL' : 'NORMAL',
      busyTimeoutMs: this.busyTimeout(),
      redact: opts.redact,
      maxArgsLength: opts.format.maxArgsLength,
      key: key ? new Uint8Array(key) : undefined,
      port: port2,
      signal: this.signal,
    };
    this.worker = new Worker(threadUrl(), { workerData: data, transferList: [port2] });
    // Neither keeps a finished process alive: close() drains what is queued on shutdown.
    this.worker.unref();
    this.port.unref();
    this.port.on('message', (reply: WriterReply) => this.answer(reply));
    this.worker.on('error', (err) => this.stop(`the audit writer thread failed: ${err.message}`));
    this.worker.on('exit', (code) => this.stop(`the audit writer thread exited with code ${code}`));
  }

  /** Whether the thread's compiled module is there to start (not so when only the TypeScript sources are). */
  static available(): boolean {
    return existsSync(threadUrl());
  }

  private busyTimeout(): number {
    return Number(this.busyTimeoutQuery.get());
  }

  submit(job: WriteJob, done: WriteDone): void {
    if (this.dead) return this.fallback.submit(job, done);
    const seq = ++this.seq;
    // The strict-mode promise callbacks stay here; everything else in a record is plain data.
    const records = job.records.map((p) => (p.settle ? { ...p, settle: undefined } : p));
    const req: WriterRequest = { seq, job: { ...job, records }, busyTimeoutMs: this.busyTimeout() };
    try {
      this.port.postMessage(req);
    } catch {
      // A value that cannot be cloned (nothing JSON-RPC produces) is written here instead.
      return this.fallback.submit(job, done);
    }
    this.pending.set(seq, done);
  }

  private answer(reply: WriterReply): void {
    const done = this.pending.get(reply.seq);
    if (!done) return;
    this.pending.delete(reply.seq);
    done(reply.error === undefined ? undefined : new Error(reply.error));
  }

  poll(): void {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) this.answer(m.message as WriterReply);
  }

  drain(): void {
    const deadline = Date.now() + DRAIN_LIMIT_MS;
    while (this.pending.size > 0) {
      const seen = Atomics.load(this.signal, 0);
      const m = receiveMessageOnPort(this.port);
      if (m) {
        this.answer(m.message as WriterReply);
        continue;
      }
      if (this.dead || Date.now() > deadline) {
        this.stop(this.dead ?? `the audit writer thread did not answer in ${DRAIN_LIMIT_MS / 1000} s`);
        return;
      }
      Atomics.wait(this.signal, 0, seen, 1000);
    }
  }

  /** From now on the main thread writes; batches not answered count as failed (they are retried by the store). */
  private stop(why: string): void {
    if (this.dead) return;
    this.dead = why;
    const failed = [...this.pending.values()];
    this.pending.clear();
    this.opts.logger?.error({ err: why }, 'audit writes continue on the main thread; restart the gateway to move them off it again');
    void this.worker.terminate();
    for (const done of failed) done(new Error(why));
  }

  close(): void {
    if (this.dead) return;
    this.drain();
    if (this.dead) return;
    const seq = ++this.seq;
    this.pending.set(seq, () => {});
    this.port.postMessage({ seq, close: true } satisfies WriterRequest);
    this.drain();
    this.dead = 'closed';
    this.worker.removeAllListeners('exit');
  }
}

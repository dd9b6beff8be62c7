/** Server-sent events for MCP: the lazy POST reply (JSON unless something must stream) and the GET session stream. */
import type { ServerResponse } from 'node:http';
import type { ReplyChannel, SessionStream } from '../gateway/channel.js';
import type { StoredEvent, StreamEventStore } from '../stores/stream-events.js';
import type { RpcMessage, RpcResponse } from '../util/jsonrpc.js';
import { wireWithId } from '../util/raw-response.js';

/** Characters above which a reply's text is encoded to bytes before it is sent (see final). */
const LONG_TEXT = 16 * 1024;

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' };

/**
 * Whether a POST's client would rather have a JSON body than an SSE stream: it names application/json before
 * text/event-stream (the SDKs send "application/json, text/event-stream"); a client naming the stream first, or only
 * a wildcard, gets the stream as before.
 */
export function prefersJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.indexOf('application/json');
  if (json < 0) return false;
  const sse = accept.indexOf('text/event-stream');
  return sse < 0 || json < sse;
}

/**
 * Answers one POST request: as one JSON body when the response is the first thing to send and the client prefers
 * JSON, else as an SSE stream (as the SDK does) of related messages (progress, logs, server requests) and then the
 * response, which ends it.
 */
export class PostReply implements ReplyChannel {
  private started = false;
  private done = false;

  /** `json`: the client prefers a JSON body (prefersJson), used when nothing has to stream before the response. */
  constructor(private readonly res: ServerResponse, private readonly headers: Record<string, string>, private readonly json = false) {}

  /** node marks a response destroyed when its client goes away (before 'close'): no listener is needed per request. */
  private get closed(): boolean {
    return this.res.destroyed;
  }

  get gone(): boolean {
    return this.done || this.closed;
  }

  private start(): void {
    this.started = true;
    this.res.writeHead(200, { ...SSE_HEADERS, ...this.headers });
  }

  related(msg: RpcMessage): void {
    if (this.gone) return;
    if (!this.started) this.start();
    this.res.write(`event: message\ndata: ${JSON.stringify(msg)}\n\n`);
  }

  final(msg: RpcResponse): void {
    if (this.done) return;
    this.done = true;
    if (this.closed) return;
    if (!this.started && this.json) {
      // Nothing streamed before the answer: the spec lets a server answer a POST as JSON, one sized write with the
      // headers (no event framing to write here or to parse at the client).
      this.started = true;
      const text = wireWithId(msg) ?? JSON.stringify(msg);
      // A long text (a large list) is encoded once, not measured and then encoded again.
      const body = text.length > LONG_TEXT ? Buffer.from(text) : text;
      this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...this.headers });
      return void this.res.end(body);
    }
    const frame = `event: message\ndata: ${wireWithId(msg, true) ?? JSON.stringify(msg)}\n\n`;
    if (this.started) return void this.res.end(frame);
    // Nothing streamed before the answer: one sized write with the headers, no chunked framing.
    this.started = true;
    this.res.writeHead(200, { ...SSE_HEADERS, ...this.headers, 'content-length': Buffer.byteLength(frame) });
    this.res.end(frame);
  }
}

/** The GET stream of one session, with event ids and replay from a StreamEventStore, so a client can resume with Last-Event-ID. */
export class GetStream implements SessionStream {
  private res?: ServerResponse;
  private lastId = 0;
  /** Writes waiting on an asynchronous store, in order; undefined while the store answers synchronously. */
  private tail?: Promise<void>;
  private keepAlive?: NodeJS.Timeout;

  /** `streamKey`: the short prefix of event ids; `storeKey`: the stream's key in the store (the whole session id). */
  constructor(
    private readonly streamKey: string,
    private readonly events: StreamEventStore,
    private readonly storeKey: string,
    private readonly retryMs = 1000,
  ) {}

  /** Attach a new GET response; replays events after `lastEventId` when given. Returns false if one is open. */
  attach(res: ServerResponse, headers: Record<string, string>, lastEventId?: string): boolean {
    if (this.res && !this.res.writableEnded) return false;
    this.res = res;
    res.writeHead(200, { ...SSE_HEADERS, ...headers });
    // Priming event: an id and empty data, so the client can always resume from here.
    res.write(`id: ${this.streamKey}.${this.lastId}\nretry: ${this.retryMs}\ndata: \n\n`);
    if (lastEventId?.startsWith(`${this.streamKey}.`)) {
      const after = Number(lastEventId.slice(this.streamKey.length + 1));
      const replay = this.events.after(this.storeKey, Number.isFinite(after) ? after : 0);
      if (replay instanceof Promise || this.tail) this.enqueue(async () => this.replay(res, await replay));
      else this.replay(res, replay);
    }
    this.keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 25_000);
    this.keepAlive.unref();
    res.once('close', () => {
      clearInterval(this.keepAlive);
      if (this.res === res) this.res = undefined;
    });
    return true;
  }

  get open(): boolean {
    return this.res !== undefined && !this.res.writableEnded;
  }

  send(msg: RpcMessage): void {
    const data = JSON.stringify(msg);
    const id = this.events.append(this.storeKey, data);
    if (id instanceof Promise || this.tail) {
      this.enqueue(async () => this.write(await id, data));
      return;
    }
    this.write(id, data);
  }

  /** Close the stream and forget its events: the session is over. */
  end(): void {
    clearInterval(this.keepAlive);
    this.res?.end();
    this.res = undefined;
    const dropped = this.events.drop(this.storeKey);
    if (dropped instanceof Promise) dropped.catch(() => undefined);
  }

  private replay(res: ServerResponse, events: readonly StoredEvent[]): void {
    for (const ev of events) res.write(this.frame(ev.id, ev.data));
  }

  private write(id: number, data: string): void {
    this.lastId = id;
    this.res?.write(this.frame(id, data));
  }

  private enqueue(task: () => Promise<void>): void {
    const run = (this.tail ?? Promise.resolve()).then(task).catch(() => undefined);
    this.tail = run;
    void run.then(() => {
      if (this.tail === run) this.tail = undefined;
    });
  }

  private frame(id: number, data: string): string {
    return `id: ${this.streamKey}.${id}\nevent: message\ndata: ${data}\n\n`;
  }
}

/**
 * One HTTP request to a model provider on pooled keep-alive connections: resolves once the response headers arrive,
 * fails with a typed reason (connect error, timeout before the first byte) so the caller can fall back.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 10_000 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 10_000 });

export type SendFailureKind = 'connect' | 'timeout' | 'aborted';

export class SendFailure extends Error {
  constructor(
    readonly kind: SendFailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface SendRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** Aborts the request at any point (the whole call's deadline, or the gateway shutting down). */
  signal: AbortSignal;
}

/** Sends and resolves with the response once its headers are in; the body is the caller's to read or discard. */
export function send(req: SendRequest): Promise<IncomingMessage> {
  const lib = req.url.protocol === 'https:' ? https : http;
  const headers: Record<string, string | number> = { ...req.headers };
  if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
  return new Promise<IncomingMessage>((resolve, reject) => {
    if (req.signal.aborted) return reject(abortFailure(req.signal));
    const r = lib.request(req.url, { method: req.method, headers, agent: req.url.protocol === 'https:' ? httpsAgent : httpAgent }, resolve);
    const onAbort = () => r.destroy(abortFailure(req.signal));
    req.signal.addEventListener('abort', onAbort, { once: true });
    r.once('response', () => req.signal.removeEventListener('abort', onAbort));
    r.once('error', (err: Error) => {
      req.signal.removeEventListener('abort', onAbort);
      reject(err instanceof SendFailure ? err : new SendFailure('connect', describe(err)));
    });
    r.end(req.body);
  });
}

function abortFailure(signal: AbortSignal): SendFailure {
  const why = signal.reason as { name?: string } | undefined;
  return why?.name === 'TimeoutError' ? new SendFailure('timeout', 'no answer before the timeout') : new SendFailure('aborted', 'the call was cancelled');
}

/** A network error in words that name no credential (URLs carry none: keys travel in headers). */
function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code}: ${err.message}` : err.message;
}

/** Reads a whole body up to `limit` bytes; more is an error (a provider answering garbage without end). */
export async function readBody(res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      throw new Error(`the answer is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Throws a response away, keeping its connection reusable when the body is small. */
export function discard(res: IncomingMessage): void {
  res.resume();
}

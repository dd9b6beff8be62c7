/**
 * The A2A 1.0 JSON-RPC relay: the caller's request goes to the agent's own endpoint on pooled keep-alive
 * connections, and the answer comes back as data. Streams are relayed event by event as they arrive (parsed with
 * eventsource-parser only to learn the task's state), never buffered.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { LookupFunction } from 'node:net';
import https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { EgressRefused } from '../upstream/a2a-egress.js';
import { errorResponse, REFUSAL_CODE, type RpcId, type RpcResponse } from '../util/jsonrpc.js';
import type { TaskObservation } from './a2a-steps.js';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 512, keepAliveMsecs: 10_000 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 512, keepAliveMsecs: 10_000 });
const MAX_UNARY_BYTES = 32 * 1024 * 1024;

export const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' };

export interface RelayTarget {
  /** The agent's JSON-RPC endpoint. */
  url: string;
  /** Manifest headers (credentials), A2A-Version, trace context. */
  headers: Record<string, string>;
  /** Per-request timeout; for streams, the longest silence between two events. */
  timeoutMs: number;
  server: string;
  /** Resolves the endpoint's host name, refusing addresses the gateway may not reach. */
  lookup?: LookupFunction;
}

/** How a relayed call ended, for the step record. */
export interface RelayOutcome {
  ok: boolean;
  reason?: string;
  seen: TaskObservation;
}

export function upstreamFailure(id: RpcId | null, server: string, detail: string, reason: 'upstream_unavailable' | 'upstream_timeout' = 'upstream_unavailable'): RpcResponse {
  const next = reason === 'upstream_timeout' ? `raise timeoutMs in its manifest if it is legitimately slow` : 'retry shortly, or ask an admin to check its manifest';
  return errorResponse(id, REFUSAL_CODE, `A2A agent '${server}' ${reason === 'upstream_timeout' ? 'timed out' : 'is unavailable'}: ${detail}; ${next}.`, { reason, server });
}

/** The gateway would not connect: the endpoint resolved to an address it never reaches for an agent. */
function refusedOrUnavailable(id: RpcId | null, server: string, err: unknown): RpcResponse {
  if (err instanceof EgressRefused) return errorResponse(id, REFUSAL_CODE, err.message, { reason: 'egress_refused', server });
  return upstreamFailure(id, server, describe(err));
}

/** Short state name from a 1.0 JSON state (`TASK_STATE_INPUT_REQUIRED` → `input-required`), 0.3 names as they are. */
export function shortState(state: unknown): string | undefined {
  if (typeof state !== 'string') return undefined;
  return state.startsWith('TASK_STATE_') ? state.slice(11).toLowerCase().replace(/_/g, '-') : state;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Task id, context and state named by a 1.0 result: a Task, `{task}`, `{message}`, `{statusUpdate}` or `{artifactUpdate}`. */
export function observeResult(result: unknown, into: TaskObservation = {}): TaskObservation {
  const r = obj(result);
  if (!r) return into;
  const inner = obj(r.task) ?? obj(r.message) ?? obj(r.statusUpdate) ?? obj(r.artifactUpdate) ?? r;
  into.taskId = str(inner.taskId) ?? (inner === r.task || 'status' in inner ? str(inner.id) : undefined) ?? into.taskId;
  into.contextId = str(inner.contextId) ?? into.contextId;
  const state = shortState(obj(inner.status)?.state);
  if (state) into.state = state;
  else if (inner === r.message && !into.state) into.state = 'completed';
  return into;
}

/** Outcome of a JSON-RPC response as the audit trail names it. */
export function outcomeOf(res: Json, seen: TaskObservation): RelayOutcome {
  const error = obj(res.error);
  if (error) {
    const data = error.data;
    const reason = str(obj(data)?.reason) ?? str(Array.isArray(data) ? obj(data[0])?.reason : undefined) ?? `a2a_error_${String(error.code)}`;
    return { ok: false, reason: reason.toLowerCase(), seen };
  }
  const failed = seen.state === 'failed' || seen.state === 'rejected';
  return { ok: !failed, ...(failed ? { reason: `task_${seen.state}` } : {}), seen };
}

function post(target: RelayTarget, body: string, accept: string, signal: AbortSignal): Promise<IncomingMessage> {
  const url = new URL(target.url);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: 'POST',
        agent: url.protocol === 'https:' ? httpsAgent : httpAgent,
        headers: { ...target.headers, 'content-type': 'application/json', accept, 'content-length': String(Buffer.byteLength(body)) },
        signal,
        ...(target.lookup ? { lookup: target.lookup } : {}),
      },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_UNARY_BYTES) res.destroy(new Error(`answer larger than ${MAX_UNARY_BYTES} bytes`));
      else chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

/** A network failure as callers may see it: its kind, never the address it was about. */
function describe(err: unknown): string {
  const code = (err as Error & { code?: string }).code;
  return code ? `it cannot be reached (${code})` : 'it cannot be reached';
}

/** A JSON answer from the agent, checked: its credentials refused (401/403) or a non-JSON-RPC body is the gateway's problem. */
async function readRpcAnswer(up: IncomingMessage, id: RpcId, target: RelayTarget): Promise<Json> {
  const text = await readAll(up);
  const status = up.statusCode ?? 0;
  if (status === 401 || status === 403) {
    return upstreamFailure(id, target.server, `it refused the gateway's credentials (HTTP ${status}); check headers in its servers.d manifest`) as unknown as Json;
  }
  try {
    const parsed = obj(JSON.parse(text));
    if (parsed && parsed.jsonrpc === '2.0' && ('result' in parsed || 'error' in parsed)) return parsed;
  } catch {
    // fall through: not JSON
  }
  return upstreamFailure(id, target.server, `it answered HTTP ${status} without a JSON-RPC response`) as unknown as Json;
}

/** Relay one request that has a single answer. */
export async function relayUnary(target: RelayTarget, id: RpcId, body: string, clientGone: AbortSignal): Promise<{ response: Json; outcome: RelayOutcome }> {
  const timeout = AbortSignal.timeout(target.timeoutMs);
  const signal = AbortSignal.any([clientGone, timeout]);
  let response: Json;
  try {
    response = await readRpcAnswer(await post(target, body, 'application/json', signal), id, target);
  } catch (err) {
    const timedOut = timeout.aborted;
    response = (timedOut ? upstreamFailure(id, target.server, `no answer within ${target.timeoutMs} ms`, 'upstream_timeout') : refusedOrUnavailable(id, target.server, err)) as unknown as Json;
  }
  const seen = observeResult(response.result);
  return { response, outcome: outcomeOf(response, seen) };
}

/**
 * Relay a streaming request (SendStreamingMessage, SubscribeToTask). Each upstream event is written to the caller
 * as soon as it is parsed. An agent that answers with plain JSON (an error before the stream) is answered in kind.
 * `onTask` hears the task id as soon as the stream names it, so a cancel sent meanwhile joins the same workflow.
 */
export async function relayStream(
  target: RelayTarget,
  id: RpcId,
  body: string,
  res: ServerResponse,
  headers: Record<string, string>,
  onTask?: (seen: TaskObservation) => void | Promise<void>,
): Promise<RelayOutcome> {
  const controller = new AbortController();
  const onClientGone = () => controller.abort(new Error('caller went away'));
  res.once('close', onClientGone);
  const seen: TaskObservation = {};
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new Error('idle')), target.timeoutMs);
  };
  armIdle();
  let up: IncomingMessage;
  try {
    up = await post(target, body, 'text/event-stream', controller.signal);
  } catch (err) {
    clearTimeout(idle);
    res.off('close', onClientGone);
    const answer = refusedOrUnavailable(id, target.server, err);
    writeJson(res, answer, headers);
    return { ok: false, reason: err instanceof EgressRefused ? 'egress_refused' : 'upstream_unavailable', seen };
  }
  if (!(up.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    clearTimeout(idle);
    res.off('close', onClientGone);
    const answer = await readRpcAnswer(up, id, target).catch((err: Error) => upstreamFailure(id, target.server, describe(err)) as unknown as Json);
    writeJson(res, answer, headers);
    return outcomeOf(answer, observeResult(answer.result, seen));
  }

  res.writeHead(200, { ...SSE_HEADERS, ...headers });
  res.flushHeaders();
  let lastError: Json | undefined;
  const parser = createParser({
    onEvent(event) {
      armIdle();
      res.write(`${event.event ? `event: ${event.event}\n` : ''}${event.id ? `id: ${event.id}\n` : ''}data: ${event.data}\n\n`);
      try {
        const msg = obj(JSON.parse(event.data));
        const known = seen.taskId;
        if (msg?.error) lastError = msg;
        else observeResult(msg?.result, seen);
        if (seen.taskId && seen.taskId !== known) void Promise.resolve(onTask?.(seen)).catch(() => {});
      } catch {
        // an event we cannot read is still relayed; it just teaches us nothing
      }
    },
  });
  const decoder = new StringDecoder('utf8');
  const ended = await new Promise<'end' | 'aborted'>((resolve) => {
    up.on('data', (chunk: Buffer) => parser.feed(decoder.write(chunk)));
    up.once('end', () => resolve('end'));
    up.once('error', () => resolve('aborted'));
    up.once('close', () => resolve(up.complete ? 'end' : 'aborted'));
  });
  clearTimeout(idle);
  res.off('close', onClientGone);
  parser.feed(decoder.end());
  const reason = controller.signal.reason as Error | undefined;
  if (ended === 'aborted' && !res.writableEnded && !res.destroyed) {
    const timedOut = reason?.message === 'idle';
    const failure = upstreamFailure(id, target.server, timedOut ? `no event for ${target.timeoutMs} ms` : 'its stream broke off', timedOut ? 'upstream_timeout' : 'upstream_unavailable');
    res.write(`event: error\ndata: ${JSON.stringify(failure)}\n\n`);
    lastError = failure as unknown as Json;
  }
  if (!res.writableEnded) res.end();
  if (reason?.message === 'caller went away') return { ok: true, reason: 'client_disconnected', seen };
  return lastError ? outcomeOf(lastError, seen) : outcomeOf({}, seen);
}

export function writeJson(res: ServerResponse, body: unknown, headers: Record<string, string> = {}, status = 200): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

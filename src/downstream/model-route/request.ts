/** Reading and checking a model-route request body: size, JSON, and the few fields the gateway itself needs. */
import type { IncomingMessage } from 'node:http';
import type { ModelOperation } from '../../upstream/models/providers.js';
import type { RouteError } from './errors.js';

export interface ModelRouteRequest {
  body: Record<string, unknown>;
  model: string;
  stream: boolean;
}

const ROUTE_OF: Record<ModelOperation, string> = { chat: 'POST /v1/chat/completions', embeddings: 'POST /v1/embeddings', messages: 'POST /v1/messages' };

export function routeOf(op: ModelOperation): string {
  return ROUTE_OF[op];
}

/** The body as text, refusing more than `limit` bytes (413) before reading it all. */
async function readText(req: IncomingMessage, limit: number): Promise<string | RouteError> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return tooLarge(limit);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
}

function tooLarge(limit: number): RouteError {
  return { reason: 'request_too_large', message: `The request body is larger than ${limit} bytes (gateway.yaml maxBodyBytes); send a shorter conversation.` };
}

function invalid(message: string, param?: string): RouteError {
  return { reason: 'invalid_request', message, param };
}

/** The parsed and checked request, or what is wrong with it. */
export async function readModelRequest(req: IncomingMessage, op: ModelOperation, limit: number): Promise<ModelRouteRequest | RouteError> {
  const text = await readText(req, limit);
  if (typeof text !== 'string') return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid(`The body is not valid JSON; ${routeOf(op)} takes one JSON object.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return invalid(`The body must be a JSON object, as ${routeOf(op)} takes.`);
  const body = parsed as Record<string, unknown>;
  if (typeof body.model !== 'string' || body.model === '') return invalid('`model` is missing: name the model to call (GET /v1/models lists the ones you may use).', 'model');
  if (body.stream !== undefined && typeof body.stream !== 'boolean') return invalid('`stream` must be true or false.', 'stream');
  if (op === 'embeddings') {
    const input = body.input;
    if (!(typeof input === 'string' || Array.isArray(input))) return invalid('`input` must be a string or an array of strings or token arrays.', 'input');
    if (body.stream === true) return invalid('Embeddings do not stream; drop `stream`.', 'stream');
  } else {
    if (!Array.isArray(body.messages)) return invalid('`messages` must be an array of messages.', 'messages');
    if (body.messages.length === 0) return invalid('`messages` is empty: send at least one message.', 'messages');
    if (op === 'messages' && typeof body.max_tokens !== 'number') return invalid('`max_tokens` is required by the Messages API: say how many tokens the answer may have.', 'max_tokens');
  }
  for (const k of ['max_tokens', 'max_completion_tokens'] as const) {
    const v = body[k];
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) return invalid(`\`${k}\` must be a whole number ≥ 0.`, k);
  }
  return { body, model: body.model, stream: body.stream === true };
}

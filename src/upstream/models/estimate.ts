/**
 * Token counts for admission: input tokens of a request counted with a real tokenizer (o200k_base, offline), and
 * output tokens of a completion whose provider reported no usage. Counts per text are cached, so a conversation that
 * resends its history only pays for its new messages.
 */
import { LRUCache } from 'lru-cache';
import type { ModelOperation } from './providers.js';

type Counter = (text: string) => number;

let counter: Counter | undefined;
let loading: Promise<Counter> | undefined;
/** Text a prompt carries may contain special-token spellings (`<|endoftext|>`): they are counted as plain text. */
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Loads the tokenizer (about 150 ms, once); the model route awaits it before it serves. */
export function loadTokenizer(): Promise<Counter> {
  return (loading ??= import('gpt-tokenizer').then((m) => (counter = (text: string) => m.countTokens(text, PLAIN))));
}

const cache = new LRUCache<string, number>({ max: 20_000, maxSize: 64 * 1024 * 1024, sizeCalculation: (_v, k) => k.length + 1 });
/** Short texts are cheaper to count than to cache. */
const CACHE_FROM = 256;

/** Tokens of one text; before the tokenizer is loaded, a cautious 1 token per 3 characters. */
export function countText(text: string): number {
  if (text.length === 0) return 0;
  if (!counter) return Math.ceil(text.length / 3);
  if (text.length < CACHE_FROM) return counter(text);
  let n = cache.get(text);
  if (n === undefined) cache.set(text, (n = counter(text)));
  return n;
}

/** Per-message framing tokens OpenAI documents for chat models (role, separators), and the reply's priming. */
const PER_MESSAGE = 4;
const PER_REQUEST = 3;
/** An image or file part: counted at a flat rate (providers bill them by size; this keeps admission cheap). */
const PER_MEDIA_PART = 1000;

/** Text of a content value in either format: a string, or parts with `text` (other parts at a flat rate). */
function contentTokens(content: unknown): number {
  if (typeof content === 'string') return countText(content);
  if (!Array.isArray(content)) return content === undefined || content === null ? 0 : countText(JSON.stringify(content));
  let n = 0;
  for (const part of content) {
    if (typeof part === 'string') n += countText(part);
    else if (part && typeof part === 'object') {
      const p = part as Record<string, unknown>;
      if (typeof p.text === 'string') n += countText(p.text);
      else if (p.type === 'tool_result' || p.type === 'tool_use') n += countText(JSON.stringify(p.content ?? p.input ?? ''));
      else n += PER_MEDIA_PART;
    }
  }
  return n;
}

function messageTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let n = 0;
  for (const m of messages) {
    n += PER_MESSAGE;
    if (!m || typeof m !== 'object') continue;
    const msg = m as Record<string, unknown>;
    n += contentTokens(msg.content);
    if (msg.tool_calls !== undefined) n += countText(JSON.stringify(msg.tool_calls));
    if (typeof msg.name === 'string') n += countText(msg.name);
  }
  return n;
}

/** Input tokens of a request body of the given operation. */
export function estimateInputTokens(op: ModelOperation, body: Record<string, unknown>): number {
  if (op === 'embeddings') {
    const input = body.input;
    if (typeof input === 'string') return countText(input);
    if (Array.isArray(input)) return input.reduce<number>((n, x) => n + (typeof x === 'string' ? countText(x) : Array.isArray(x) ? x.length : 0), 0);
    return 0;
  }
  let n = PER_REQUEST + messageTokens(body.messages);
  if (op === 'messages' && body.system !== undefined) n += contentTokens(body.system);
  if (body.tools !== undefined) n += countText(JSON.stringify(body.tools));
  if (body.functions !== undefined) n += countText(JSON.stringify(body.functions));
  return n;
}

/** The output tokens a request may produce, as it asks (`max_tokens`, `max_completion_tokens`), capped. */
export function requestedOutputTokens(op: ModelOperation, body: Record<string, unknown>, cap: number): number {
  if (op === 'embeddings') return 0;
  const asked = [body.max_completion_tokens, body.max_tokens, body.max_output_tokens].find((v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0);
  const n = asked === undefined ? cap : Math.min(Math.ceil(asked), cap);
  // `n` choices produce up to n completions.
  const choices = typeof body.n === 'number' && body.n > 1 ? Math.min(Math.floor(body.n), 128) : 1;
  return n * choices;
}

/** Usage, cost and finish reason as each provider format reports them, in one shape. */
import type { ModelConfig } from '../../config/types.js';

export interface ModelUsage {
  /** Every input token, cached ones included. */
  input: number;
  output: number;
  /** Input tokens read from the provider's prompt cache (billed at `price.cachedInput`). */
  cachedInput: number;
  /** Counted by the gateway from the text because the provider reported none. */
  estimated?: boolean;
}

type Json = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);

/** OpenAI `usage` (chat completions and embeddings); undefined when absent. */
export function openaiUsage(usage: unknown): ModelUsage | undefined {
  const u = obj(usage);
  if (!u || (typeof u.prompt_tokens !== 'number' && typeof u.completion_tokens !== 'number')) return undefined;
  const cached = num(obj(u.prompt_tokens_details)?.cached_tokens);
  return { input: num(u.prompt_tokens), output: num(u.completion_tokens), cachedInput: cached };
}

/** Anthropic `usage`: input_tokens excludes cache reads and writes, which are added back in. */
export function anthropicUsage(usage: unknown, base?: ModelUsage): ModelUsage | undefined {
  const u = obj(usage);
  if (!u) return base;
  const has = (k: string) => typeof u[k] === 'number';
  if (!has('input_tokens') && !has('output_tokens')) return base;
  const cacheRead = num(u.cache_read_input_tokens);
  const input = has('input_tokens') ? num(u.input_tokens) + num(u.cache_creation_input_tokens) + cacheRead : (base?.input ?? 0);
  return {
    input,
    output: has('output_tokens') ? num(u.output_tokens) : (base?.output ?? 0),
    cachedInput: has('input_tokens') ? cacheRead : (base?.cachedInput ?? 0),
  };
}

/** USD for a usage at the model's price (per 1M tokens); 0 without a price. */
export function costOf(m: Pick<ModelConfig, 'price'> | undefined, u: ModelUsage): number {
  const p = m?.price;
  if (!p) return 0;
  const cached = Math.min(u.cachedInput, u.input);
  return ((u.input - cached) * p.input + cached * (p.cachedInput ?? p.input) + u.output * p.output) / 1_000_000;
}

/** Cost of a reservation: input at the full input price, output at the output price. */
export function reservationCost(m: Pick<ModelConfig, 'price'> | undefined, input: number, output: number): number {
  return costOf(m, { input, output, cachedInput: 0 });
}

export function totalTokens(u: ModelUsage): number {
  return u.input + u.output;
}

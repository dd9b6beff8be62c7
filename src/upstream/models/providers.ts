/**
 * Model providers behind the gateway: which URL and headers each format takes, the key injected upstream, the
 * per-model circuit breaker, and fallbacks tried in order on 429, 5xx, connect error or timeout before the first byte.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { ModelConfig, ModelProvider } from '../../config/types.js';
import { BreakerBoard } from '../../limits/breaker.js';
import { discard, send, SendFailure } from './send.js';

/** The upstream operation: chat completions and embeddings speak OpenAI's format, messages Anthropic's. */
export type ModelOperation = 'chat' | 'embeddings' | 'messages';

export const FORMAT_OF: Readonly<Record<ModelOperation, ModelProvider>> = { chat: 'openai', embeddings: 'openai', messages: 'anthropic' };

export interface ModelRequest {
  operation: ModelOperation;
  /** The client's body, parsed; forwarded with `model` replaced by the upstream id (and usage asked for on streams). */
  body: Record<string, unknown>;
  stream: boolean;
  /** Client headers a provider format defines (anthropic-version, anthropic-beta); never credentials. */
  passHeaders: Record<string, string>;
  traceparent?: string;
  /** The gateway's own cancellation (shutdown, workflow kill); a client leaving does not cancel: the call is read to its end. */
  signal?: AbortSignal;
}

export type ModelAttempt =
  | { ok: true; model: ModelConfig; res: IncomingMessage; signal: AbortSignal; sentAt: number; headersAt: number; tried: string[] }
  | { ok: false; reason: 'upstream_unavailable' | 'upstream_timeout'; message: string; tried: string[] };

/** Upstream statuses that mean "try the next model": rate limited, or the provider is failing. */
function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

function upstreamUrl(m: ModelConfig, op: ModelOperation): URL {
  const base = m.baseUrl.replace(/\/+$/, '');
  if (op === 'messages') return new URL(`${base}/v1/messages`);
  return new URL(`${base}/${op === 'chat' ? 'chat/completions' : 'embeddings'}`);
}

function upstreamHeaders(m: ModelConfig, r: ModelRequest): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json', accept: r.stream ? 'text/event-stream' : 'application/json', ...m.headers };
  if (m.provider === 'anthropic') {
    h['anthropic-version'] = r.passHeaders['anthropic-version'] ?? '2023-06-01';
    if (r.passHeaders['anthropic-beta']) h['anthropic-beta'] = r.passHeaders['anthropic-beta'];
    if (m.apiKey) h['x-api-key'] = m.apiKey;
  } else if (m.apiKey) h.authorization = `Bearer ${m.apiKey}`;
  if (r.traceparent) h.traceparent = r.traceparent;
  return h;
}

/** The body as this model's provider receives it. */
export function upstreamBody(m: ModelConfig, r: ModelRequest): string {
  const body: Record<string, unknown> = { ...r.body, model: m.model ?? m.name };
  if (r.stream && r.operation === 'chat') {
    const own = r.body.stream_options;
    body.stream_options = { ...(typeof own === 'object' && own !== null ? own : {}), include_usage: true };
  }
  return JSON.stringify(body);
}

export class ModelProviders {
  readonly breakers: BreakerBoard;
  #models = new Map<string, ModelConfig>();

  constructor(
    models: readonly ModelConfig[],
    private readonly log: Logger,
  ) {
    this.breakers = new BreakerBoard({ onStateChange: (name, state) => log.warn({ model: name, breaker: state }, `circuit breaker for model '${name}' is ${state}`) });
    this.apply(models);
  }

  /** A new `models` list (hot reload): breakers of changed or removed models start afresh. */
  apply(models: readonly ModelConfig[]): void {
    const next = new Map(models.map((m) => [m.name, m]));
    for (const [name, old] of this.#models) {
      const now = next.get(name);
      if (!now || JSON.stringify(now) !== JSON.stringify(old)) this.breakers.remove(name);
    }
    for (const m of models) this.breakers.get(m.name, { failureThreshold: m.breaker.failures, cooldownMs: m.breaker.cooldownSeconds * 1000 });
    this.#models = next;
  }

  get(name: string): ModelConfig | undefined {
    return this.#models.get(name);
  }

  list(): ModelConfig[] {
    return [...this.#models.values()];
  }

  /** The model asked for, then its fallbacks, in order. */
  chainOf(m: ModelConfig): ModelConfig[] {
    const out = [m];
    for (const f of m.fallbacks) {
      const fb = this.#models.get(f);
      if (fb && fb.provider === m.provider) out.push(fb);
    }
    return out;
  }

  /** Send to the model, falling back in order; resolves with the first answer that is neither a 429 nor a 5xx. */
  async forward(m: ModelConfig, r: ModelRequest): Promise<ModelAttempt> {
    const tried: string[] = [];
    let last: { reason: 'upstream_unavailable' | 'upstream_timeout'; message: string } = { reason: 'upstream_unavailable', message: `model '${m.name}' is unavailable` };
    for (const candidate of this.chainOf(m)) {
      if (!this.breakers.canPass(candidate.name)) {
        last = { reason: 'upstream_unavailable', message: `the circuit breaker of model '${candidate.name}' is open after repeated failures` };
        continue;
      }
      tried.push(candidate.name);
      const signals = [AbortSignal.timeout(candidate.timeoutMs)];
      if (r.signal) signals.push(r.signal);
      const signal = signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
      const sentAt = performance.now();
      let res: IncomingMessage;
      try {
        res = await send({ url: upstreamUrl(candidate, r.operation), method: 'POST', headers: upstreamHeaders(candidate, r), body: upstreamBody(candidate, r), signal });
      } catch (err) {
        const f = err instanceof SendFailure ? err : new SendFailure('connect', String(err));
        if (f.kind === 'aborted') return { ok: false, reason: 'upstream_unavailable', message: 'the call was cancelled', tried };
        this.breakers.onFailure(candidate.name);
        last = f.kind === 'timeout'
          ? { reason: 'upstream_timeout', message: `model '${candidate.name}' did not answer within ${candidate.timeoutMs} ms` }
          : { reason: 'upstream_unavailable', message: `model '${candidate.name}' could not be reached (${f.message})` };
        this.log.warn({ model: candidate.name, err: f.message }, `model '${candidate.name}' failed: ${last.message}`);
        continue;
      }
      const status = res.statusCode ?? 0;
      if (status === 401 || status === 403) {
        discard(res);
        this.breakers.onFailure(candidate.name);
        // The gateway's own key is wrong: an operator's problem, said once in the log; the agent only learns it is unavailable.
        this.log.error({ model: candidate.name, status }, `the provider of model '${candidate.name}' refused the gateway's API key (HTTP ${status}); fix models[].apiKey in gateway.yaml`);
        last = { reason: 'upstream_unavailable', message: `model '${candidate.name}' is unavailable` };
        continue;
      }
      if (retryable(status)) {
        discard(res);
        if (status !== 429) this.breakers.onFailure(candidate.name);
        last = { reason: 'upstream_unavailable', message: `model '${candidate.name}' answered HTTP ${status}` };
        this.log.warn({ model: candidate.name, status }, `model '${candidate.name}' answered HTTP ${status}`);
        continue;
      }
      this.breakers.onSuccess(candidate.name);
      return { ok: true, model: candidate, res, signal, sentAt, headersAt: performance.now(), tried };
    }
    return { ok: false, ...last, tried };
  }
}

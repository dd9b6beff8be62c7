/**
 * The provider's answer on its way back: a JSON answer relayed whole, a stream relayed event by event; either way the
 * usage is read (or estimated from the text) and turned into the step's outcome, also when the client has left.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ModelOutcome, Step, StepOutcome } from '../../gateway/types.js';
import { countText } from '../../upstream/models/estimate.js';
import type { ModelAttempt, ModelOperation } from '../../upstream/models/providers.js';
import { readBody } from '../../upstream/models/send.js';
import { relayStream } from '../../upstream/models/stream.js';
import { anthropicUsage, costOf, openaiUsage, totalTokens, type ModelUsage } from '../../upstream/models/usage.js';
import { sendError, type Wire } from './errors.js';

export interface Remaining {
  tokens?: number;
  costUsd?: number;
}

export interface RelayInput {
  attempt: Extract<ModelAttempt, { ok: true }>;
  op: ModelOperation;
  wire: Wire;
  step: Step;
  res: ServerResponse;
  stream: boolean;
  /** The client set stream_options.include_usage itself: it sees the usage chunk. */
  clientWantsUsage: boolean;
  /** Response headers; given what the answer used when it is known before they are sent. */
  headers: (used?: { tokens: number; costUsd: number }) => Record<string, string>;
  maxDrainBytes: number;
  modelBodies: 'none' | 'hash' | 'full';
  log: Logger;
}

type Json = Record<string, unknown>;

/** Completion text of a JSON answer in either format (for estimates and `audit.modelBodies`). */
function answerText(op: ModelOperation, body: Json): string {
  if (op === 'messages') {
    const content = Array.isArray(body.content) ? (body.content as Json[]) : [];
    return content.map((c) => (typeof c?.text === 'string' ? c.text : c?.input !== undefined ? JSON.stringify(c.input) : '')).join('');
  }
  if (op === 'embeddings') return '';
  const choices = Array.isArray(body.choices) ? (body.choices as Json[]) : [];
  return choices
    .map((c) => {
      const msg = c?.message as Json | undefined;
      const calls = Array.isArray(msg?.tool_calls) ? JSON.stringify(msg.tool_calls) : '';
      return `${typeof msg?.content === 'string' ? msg.content : ''}${calls}`;
    })
    .join('');
}

function finishOf(op: ModelOperation, body: Json): string | undefined {
  if (op === 'messages') return typeof body.stop_reason === 'string' ? body.stop_reason : undefined;
  const first = Array.isArray(body.choices) ? (body.choices[0] as Json | undefined) : undefined;
  return typeof first?.finish_reason === 'string' ? first.finish_reason : undefined;
}

/** Usage the provider gave, or one counted from the text: the input the gateway counted, the output it saw. */
function usageOr(u: ModelUsage | undefined, step: Step, text: string, textChars = text.length): ModelUsage {
  if (u) return u;
  const seen = countText(text);
  const output = text.length > 0 && textChars > text.length ? Math.ceil((seen * textChars) / text.length) : seen;
  return { input: step.model!.reserve.inputTokens, output, cachedInput: 0, estimated: true };
}

function bodiesOf(mode: RelayInput['modelBodies'], text: string): unknown {
  if (mode === 'none') return undefined;
  return mode === 'full' ? { completion: text } : { completionSha256: createHash('sha256').update(text).digest('hex') };
}

function outcomeOf(r: RelayInput, usage: ModelUsage, extra: Partial<ModelOutcome>, result: Pick<StepOutcome, 'outcome' | 'reason'>, bytes: number): StepOutcome {
  const m = r.attempt.model;
  const model: ModelOutcome = {
    model: m.name,
    upstreamModel: m.model ?? m.name,
    provider: m.provider,
    tokens: { input: usage.input, output: usage.output, cachedInput: usage.cachedInput },
    costUsd: costOf(m, usage),
    ...extra,
  };
  if (usage.estimated) model.tokensEstimated = true;
  return { ...result, durationMs: Date.now() - r.step.startedAt, bytes, tokens: totalTokens(usage), model };
}

const NO_USAGE: ModelUsage = { input: 0, output: 0, cachedInput: 0 };

export async function relayAnswer(r: RelayInput): Promise<StepOutcome> {
  const up = r.attempt.res;
  const status = up.statusCode ?? 502;
  const type = String(up.headers['content-type'] ?? '');
  if (r.stream && status < 300 && type.includes('text/event-stream')) return relayEvents(r);
  let raw: Buffer;
  try {
    raw = await readBody(up, r.maxDrainBytes);
  } catch (err) {
    return garbage(r, `its answer could not be read (${(err as Error).message})`, 0);
  }
  const ttftMs = Date.now() - r.step.startedAt;
  if (status >= 300) {
    // The provider refused the request itself (400, 404, 422…): its own words reach the client, nothing was generated.
    r.res.writeHead(status, { ...r.headers({ tokens: 0, costUsd: 0 }), 'content-type': type || 'application/json', 'content-length': String(raw.length) });
    r.res.end(raw);
    return outcomeOf(r, NO_USAGE, { ttftMs }, { outcome: 'error', reason: 'provider_refused' }, raw.length);
  }
  let body: Json | undefined;
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    body = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    body = undefined;
  }
  if (!body) return garbage(r, 'it answered something that is not a JSON object', raw.length);
  const reported = r.op === 'messages' ? anthropicUsage(body.usage) : openaiUsage(body.usage);
  const text = answerText(r.op, body);
  const usage = usageOr(reported, r.step, text);
  r.res.writeHead(200, { ...r.headers({ tokens: totalTokens(usage), costUsd: costOf(r.attempt.model, usage) }), 'content-type': 'application/json', 'content-length': String(raw.length) });
  r.res.end(raw);
  return outcomeOf(r, usage, { ttftMs, finishReason: finishOf(r.op, body), bodies: bodiesOf(r.modelBodies, text) }, { outcome: 'ok' }, raw.length);
}

/** A provider that answered garbage: the client gets upstream_unavailable, the input the gateway counted is charged. */
function garbage(r: RelayInput, what: string, bytes: number): StepOutcome {
  const name = r.attempt.model.name;
  r.log.warn({ model: name, workflowId: r.step.workflowId }, `the provider of model '${name}' failed: ${what}`);
  sendError(r.res, r.wire, { reason: 'upstream_unavailable', message: `Model '${name}' failed: ${what}; try again later.` }, r.step.workflowId);
  return outcomeOf(r, usageOr(undefined, r.step, ''), {}, { outcome: 'error', reason: 'upstream_unavailable' }, bytes);
}

async function relayEvents(r: RelayInput): Promise<StepOutcome> {
  const { res } = r;
  res.writeHead(200, { ...r.headers(), 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  const result = await relayStream(r.attempt.res, {
    format: r.wire,
    hideUsage: r.op === 'chat' && !r.clientWantsUsage,
    write: (text) => {
      if (res.destroyed || res.writableEnded) return false;
      res.write(text);
      return true;
    },
    maxDrainBytes: r.maxDrainBytes,
  });
  if (!res.destroyed && !res.writableEnded) res.end();
  const usage = usageOr(result.usage, r.step, result.text, result.textChars);
  const ttftMs = result.firstTokenAt === undefined ? undefined : Math.max(0, Date.now() - (performance.now() - result.firstTokenAt) - r.step.startedAt);
  if (result.error) r.log.warn({ model: r.attempt.model.name, workflowId: r.step.workflowId }, `model '${r.attempt.model.name}': ${result.error}`);
  const verdict: Pick<StepOutcome, 'outcome' | 'reason'> = result.complete ? { outcome: 'ok' } : { outcome: 'error', reason: 'upstream_unavailable' };
  return outcomeOf(r, usage, { ttftMs, finishReason: result.finishReason, bodies: bodiesOf(r.modelBodies, result.text) }, verdict, result.bytes);
}

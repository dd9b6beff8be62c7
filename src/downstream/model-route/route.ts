/**
 * The model route (SPEC §9): `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models` (OpenAI format) and
 * `POST /v1/messages` (Anthropic format). Each call is authenticated, placed in a workflow, checked and reserved by the
 * guard chain, forwarded with the gateway's own key, relayed as it arrives, and reconciled with the provider's usage.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { GatewayConfig, ModelConfig } from '../../config/types.js';
import type { ModelSteps } from '../../gateway/model-steps.js';
import { validTraceparent } from '../../gateway/model-steps.js';
import type { Routed } from '../../gateway/pipeline.js';
import type { Caller, ModelStepInfo, Step } from '../../gateway/types.js';
import { modelAccess } from '../../identity/model-policy.js';
import type { LiveAgents } from '../../identity/policy.js';
import { estimateInputTokens, requestedOutputTokens } from '../../upstream/models/estimate.js';
import { FORMAT_OF, type ModelOperation, type ModelProviders } from '../../upstream/models/providers.js';
import { reservationCost } from '../../upstream/models/usage.js';
import type { AuthResult } from '../mcp-http.js';
import { sendError, sendJson, type RouteError, type Wire } from './errors.js';
import { relayAnswer, type Remaining } from './relay.js';
import { readModelRequest, routeOf } from './request.js';

export interface ModelRouteDeps {
  providers: ModelProviders;
  steps: ModelSteps;
  authenticate: (req: IncomingMessage, resourcePath: string) => AuthResult | Promise<AuthResult>;
  agents: LiveAgents;
  config: GatewayConfig;
  /** The tightest budget left to the step's caller, after its reservation. */
  remaining: (step: Step) => Remaining | Promise<Remaining>;
  log: Logger;
}

const OPERATIONS: Record<string, ModelOperation> = { '/v1/chat/completions': 'chat', '/v1/embeddings': 'embeddings', '/v1/messages': 'messages' };
export const MODEL_PATHS: ReadonlySet<string> = new Set([...Object.keys(OPERATIONS), '/v1/models']);

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Anthropic SDKs send `anthropic-version`; their callers get Anthropic's shapes on the shared paths. */
function wireOfRequest(req: IncomingMessage, op: ModelOperation | undefined): Wire {
  if (op) return FORMAT_OF[op];
  return header(req, 'anthropic-version') !== undefined ? 'anthropic' : 'openai';
}

function notFound(model: string): RouteError {
  return { reason: 'model_not_found', message: `The model '${model.slice(0, 128)}' does not exist or you do not have access to it; GET /v1/models lists the ones you may use.`, param: 'model' };
}

export class ModelRoute {
  constructor(private readonly deps: ModelRouteDeps) {}

  /** Serves a request whose path is in MODEL_PATHS. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const op = OPERATIONS[path];
    const wire = wireOfRequest(req, op);
    const expected = op ? 'POST' : 'GET';
    if (req.method !== expected) {
      res.setHeader('allow', expected);
      return sendJson(res, 405, errorShape(wire, `${req.method} is not served here; use ${expected} ${path}.`));
    }
    let auth = this.deps.authenticate(req, '/v1');
    if (auth instanceof Promise) auth = await auth;
    if (!auth.ok) {
      const message = String((auth.body.error as { message?: string } | undefined)?.message ?? 'Authentication required.');
      const reason = auth.status === 403 ? 'policy_denied' : auth.status === 400 ? 'invalid_request' : 'unauthenticated';
      return sendError(res, wire, { reason, message }, undefined, auth.headers);
    }
    const caller = auth.caller;
    if (!op) return this.listModels(res, wire, caller);
    return this.call(req, res, op, caller);
  }

  private listModels(res: ServerResponse, wire: Wire, caller: Caller): void {
    const may = modelAccess(caller, this.deps.agents);
    const models = this.deps.providers.list().filter((m) => may(m.name));
    if (wire === 'anthropic') {
      const data = models.filter((m) => m.provider === 'anthropic').map((m) => ({ type: 'model', id: m.name, display_name: m.name, created_at: '1970-01-01T00:00:00Z' }));
      return sendJson(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
    }
    sendJson(res, 200, { object: 'list', data: models.map((m) => ({ id: m.name, object: 'model', created: 0, owned_by: m.provider })) });
  }

  private async call(req: IncomingMessage, res: ServerResponse, op: ModelOperation, caller: Caller): Promise<void> {
    const wire = FORMAT_OF[op];
    const { config } = this.deps;
    const parsed = await readModelRequest(req, op, config.maxBodyBytes);
    if ('reason' in parsed) return sendError(res, wire, parsed);
    const m = this.deps.providers.get(parsed.model);
    if (!m || !modelAccess(caller, this.deps.agents)(m.name)) return sendError(res, wire, notFound(parsed.model));
    if (FORMAT_OF[op] !== m.provider) {
      const serves = m.provider === 'anthropic' ? 'POST /v1/messages' : 'POST /v1/chat/completions (or POST /v1/embeddings)';
      return sendError(res, wire, { reason: 'invalid_request', message: `Model '${m.name}' is an ${m.provider} model: ${routeOf(op)} does not serve it; call ${serves}.`, param: 'model' });
    }

    const traceparent = validTraceparent(header(req, 'traceparent'));
    const placing = this.deps.steps.place(caller, header(req, 'x-workflow-id'), traceparent);
    const placed = placing instanceof Promise ? await placing : placing;
    if (!placed.ok) return sendError(res, wire, placed.refusal);
    const workflowId = placed.workflowId;

    const info = this.stepInfo(m, op, parsed.body);
    const passHeaders: Record<string, string> = {};
    for (const h of ['anthropic-version', 'anthropic-beta']) {
      const v = header(req, h);
      if (v !== undefined) passHeaders[h] = v;
    }
    const result = await this.deps.steps.run({ caller, workflowId, info, traceparent, args: this.auditArgs(parsed.body) }, async (step): Promise<Routed<RouteError | undefined>> => {
      // Read once the reservation is made (with a shared store this is a promise): the headers report it.
      const leftNow = this.deps.remaining(step);
      const left = leftNow instanceof Promise ? await leftNow : leftNow;
      const attempt = await this.deps.providers.forward(m, { operation: op, body: parsed.body, stream: parsed.stream, passHeaders, traceparent });
      if (!attempt.ok) {
        // Rendered once the step is recorded; the reservation is released by `after`.
        const failure = { reason: attempt.reason, message: `${attempt.message}; try again later, or ask an admin to check the provider of '${m.name}'.` };
        return { value: failure, outcome: 'error', reason: attempt.reason };
      }
      // Resolves when the provider's answer (a whole body, or a stream relayed chunk by chunk) has ended.
      const relayed = await relayAnswer({
        attempt,
        op,
        wire,
        step,
        res,
        stream: parsed.stream,
        clientWantsUsage: (parsed.body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true,
        headers: (used) => this.responseHeaders(step, { ...left }, used),
        maxDrainBytes: config.modelRoute.maxDrainBytes,
        modelBodies: config.audit.modelBodies,
        log: this.deps.log,
      });
      return { value: undefined, outcome: relayed.outcome === 'ok' ? 'ok' : 'error', reason: relayed.reason, bytes: relayed.bytes, tokens: relayed.tokens, model: relayed.model };
    });
    if (result.kind === 'refused') return sendError(res, wire, result.refusal, workflowId);
    if (result.kind === 'done' && result.value) return sendError(res, wire, result.value, workflowId);
  }

  private stepInfo(m: ModelConfig, op: ModelOperation, body: Record<string, unknown>): ModelStepInfo {
    const input = estimateInputTokens(op, body);
    const output = requestedOutputTokens(op, body, this.deps.config.modelRoute.reservationCapTokens);
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([m.name, body.system ?? null, body.messages ?? body.input ?? null, body.tools ?? null]))
      .digest('base64url');
    return {
      model: m.name,
      provider: m.provider,
      upstreamModel: m.model ?? m.name,
      reserve: { tokens: input + output, costUsd: reservationCost(m, input, output), inputTokens: input },
      fingerprint,
    };
  }

  /** What the trail keeps of the prompt: nothing, a digest, or the (redacted) request, as `audit.modelBodies` says. */
  private auditArgs(body: Record<string, unknown>): Record<string, unknown> | undefined {
    const mode = this.deps.config.audit.modelBodies;
    if (mode === 'none') return undefined;
    const prompt = { system: body.system, messages: body.messages ?? body.input, tools: body.tools };
    if (mode === 'full') return prompt;
    return { promptSha256: createHash('sha256').update(JSON.stringify(prompt)).digest('hex') };
  }

  /** The tightest budget left: with `used` known (a whole answer), as it will be once the reservation is reconciled. */
  private responseHeaders(step: Step, left: Remaining, used?: { tokens: number; costUsd: number }): Record<string, string> {
    const h: Record<string, string> = { 'x-workflow-id': step.workflowId };
    const r = step.model!.reserve;
    if (used && left.tokens !== undefined) left.tokens += r.tokens - used.tokens;
    if (used && left.costUsd !== undefined) left.costUsd += r.costUsd - used.costUsd;
    if (left.tokens !== undefined) h['x-budget-remaining-tokens'] = String(Math.max(0, Math.floor(left.tokens)));
    if (left.costUsd !== undefined) h['x-budget-remaining-usd'] = Math.max(0, left.costUsd).toFixed(6);
    return h;
  }
}

function errorShape(wire: Wire, message: string): Record<string, unknown> {
  return wire === 'anthropic' ? { type: 'error', error: { type: 'invalid_request_error', message } } : { error: { message, type: 'invalid_request_error', code: 'method_not_allowed', param: null } };
}

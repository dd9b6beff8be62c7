/**
 * Refusals and failures of the model route in each wire's own error shape: OpenAI `{error: {message, type, code}}`,
 * Anthropic `{type: "error", error: {type, message}}`, both with `switchyard: {reason, workflowId, limit, used, max}`.
 */
import type { ServerResponse } from 'node:http';
import type { Refusal } from '../../gateway/types.js';

export type Wire = 'openai' | 'anthropic';

/** Reasons of the model route: SPEC §7's, plus `model_not_found` (a hidden model answers exactly like an unknown one). */
export type ModelRouteReason = Refusal['reason'] | 'model_not_found' | 'request_too_large';

export interface RouteError {
  reason: ModelRouteReason;
  message: string;
  data?: Record<string, unknown>;
  /** Which request field is wrong, for invalid requests (OpenAI `param`). */
  param?: string;
}

const STATUS: Record<ModelRouteReason, number> = {
  unauthenticated: 401,
  policy_denied: 403,
  approval_denied: 403,
  workflow_paused: 403,
  delegation_denied: 403,
  model_not_found: 404,
  request_too_large: 413,
  budget_exceeded: 429,
  rate_limited: 429,
  loop_detected: 429,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  invalid_request: 400,
};

const OPENAI_TYPE: Partial<Record<ModelRouteReason, string>> = {
  unauthenticated: 'authentication_error',
  policy_denied: 'permission_error',
  approval_denied: 'permission_error',
  workflow_paused: 'permission_error',
  delegation_denied: 'permission_error',
  budget_exceeded: 'insufficient_quota',
  rate_limited: 'rate_limit_error',
  loop_detected: 'rate_limit_error',
  upstream_unavailable: 'api_error',
  upstream_timeout: 'api_error',
};

const ANTHROPIC_TYPE: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  502: 'api_error',
  504: 'timeout_error',
};

export function statusOf(reason: ModelRouteReason): number {
  return STATUS[reason] ?? 400;
}

/** The `switchyard` member: the machine reason and, for limits, which limit and how far it is spent. */
function switchyardPart(e: RouteError, workflowId: string | undefined): Record<string, unknown> {
  const d = e.data ?? {};
  const part: Record<string, unknown> = { reason: e.reason };
  const wf = (d.workflowId as string | undefined) ?? workflowId;
  if (wf !== undefined) part.workflowId = wf;
  for (const k of ['limit', 'used', 'max', 'resetAt', 'retryAfterSeconds', 'state'] as const) if (d[k] !== undefined) part[k] = d[k];
  return part;
}

export function errorBody(wire: Wire, e: RouteError, workflowId?: string): { status: number; body: Record<string, unknown> } {
  const status = statusOf(e.reason);
  const switchyard = switchyardPart(e, workflowId);
  if (wire === 'anthropic') return { status, body: { type: 'error', error: { type: ANTHROPIC_TYPE[status] ?? 'api_error', message: e.message }, switchyard } };
  const error: Record<string, unknown> = { message: e.message, type: OPENAI_TYPE[e.reason] ?? 'invalid_request_error', code: e.reason, param: e.param ?? null };
  return { status, body: { error, switchyard } };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return void res.end();
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** Render an error, with Retry-After when a window will free up. */
export function sendError(res: ServerResponse, wire: Wire, e: RouteError, workflowId?: string, headers: Record<string, string> = {}): void {
  const { status, body } = errorBody(wire, e, workflowId);
  const h: Record<string, string> = { ...headers };
  if (workflowId !== undefined) h['x-workflow-id'] = workflowId;
  const retry = e.data?.retryAfterSeconds;
  if (status === 429 && typeof retry === 'number') h['retry-after'] = String(retry);
  sendJson(res, status, body, h);
}

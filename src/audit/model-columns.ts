/**
 * The model fields of audit rows (SPEC §9): model, team and cost as columns (the spend endpoint groups on them), the
 * rest (provider, upstream model, tokens, finish reason, timing, bodies) as JSON (columns: stores/sqlite/model-columns.ts).
 */
import type { Step, StepOutcome } from '../gateway/types.js';
import type { PendingRecord } from './rows.js';


/** What a model step adds to its audit row; the prompt itself is in `args` only as `audit.modelBodies` allows. */
export function modelRecord(step: Step, outcome: StepOutcome): NonNullable<PendingRecord['model']> {
  const m = outcome.model;
  const s = step.model;
  const info: Record<string, unknown> = {
    provider: m?.provider ?? s?.provider,
    upstreamModel: m?.upstreamModel ?? s?.upstreamModel,
    tokens: m?.tokens ?? { input: 0, output: 0, cachedInput: 0 },
  };
  if (m && s && m.model !== s.model) info.answeredBy = m.model;
  if (m?.finishReason !== undefined) info.finishReason = m.finishReason;
  if (m?.ttftMs !== undefined) info.ttftMs = Math.round(m.ttftMs * 1000) / 1000;
  if (m?.tokensEstimated) info.tokensEstimated = true;
  if (s) info.reserved = s.reserve;
  return { name: s?.model ?? step.target, team: step.caller.agent?.team, costUsd: m?.costUsd ?? 0, info, bodies: m?.bodies };
}

/** The model fields as the admin API shows them on an audit record or a workflow step. */
export interface ModelFields {
  name: string;
  costUsd: number;
  provider?: string;
  upstreamModel?: string;
  tokens?: { input: number; output: number; cachedInput: number };
  finishReason?: string;
  ttftMs?: number;
  tokensEstimated?: boolean;
  answeredBy?: string;
  reserved?: { tokens: number; costUsd: number; inputTokens: number };
  bodies?: unknown;
}

export function modelFields(row: { model: string | null; cost_usd: number | null; model_info: string | null }): ModelFields {
  let info: Record<string, unknown> = {};
  try {
    info = row.model_info ? (JSON.parse(row.model_info) as Record<string, unknown>) : {};
  } catch {
    // A damaged row still shows its model and cost.
  }
  return { ...info, name: row.model ?? '', costUsd: row.cost_usd ?? 0 };
}

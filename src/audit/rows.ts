/** Turning a queued step into its stored, redacted and hashed audit row (done in the writer, off the response path). */
import { rowHash, type AuditRow } from './chain.js';
import type { Step, StepOutcome } from '../gateway/types.js';
import type { Redactor } from './redact.js';
import { modelRecord } from './model-columns.js';

/** What record() keeps: plain fields copied off the Step; args by reference, redacted later in the writer. */
export interface PendingRecord {
  time: number;
  workflowId: string;
  step: number;
  parentStep: number | undefined;
  agent: string;
  user: string | undefined;
  chain: readonly string[];
  kind: string;
  server: string | undefined;
  tool: string;
  args: unknown;
  outcome: string;
  reason: string | undefined;
  durationMs: number;
  bytes: number | undefined;
  tokens: number | undefined;
  traceparent: string | undefined;
  /** Model calls only. */
  model?: { name: string; team: string | undefined; costUsd: number; info: Record<string, unknown>; bodies: unknown };
  settle?: { resolve: () => void; reject: (err: Error) => void };
}

/** The fields of a finished step that are kept: O(1), args by reference (redacted later, in the writer). */
export function pendingOf(step: Step, outcome: StepOutcome): PendingRecord {
  const p: PendingRecord = {
    time: step.startedAt,
    workflowId: step.workflowId,
    step: step.stepNo,
    parentStep: step.parentStep,
    agent: step.caller.agentId,
    user: step.caller.user,
    chain: step.caller.chain,
    kind: step.kind,
    server: step.server,
    tool: step.target,
    args: step.args,
    outcome: outcome.outcome,
    reason: outcome.reason,
    durationMs: outcome.durationMs,
    bytes: outcome.bytes,
    tokens: outcome.tokens,
    traceparent: step.traceparent,
  };
  if (step.kind === 'model/call') p.model = modelRecord(step, outcome);
  return p;
}

export interface RowFormat {
  redactor: Redactor;
  maxArgsLength: number;
  /** The audit key: rows are HMAC-chained with it; plain SHA-256 without. */
  key: Buffer | undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** SQLite would rewrite lone surrogates on storage and break the hash; normalise them first. */
function text(value: string): string;
function text(value: string | undefined): string | null;
function text(value: string | undefined): string | null {
  if (value === undefined) return null;
  return LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATES, '\uFFFD') : value;
}

function optionalInt(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Math.round(value);
}

/** A record's stored fields before it has a place in the chain (id, prev_hash, hash). */
export type RowFields = Omit<AuditRow, 'id' | 'prev_hash' | 'hash'>;

/** Redact, serialise and hash one record. */
export function toRow(p: PendingRecord, id: number, prevHash: string, f: RowFormat): AuditRow {
  // The fields are this row's own, so they are completed in place: chainRow's two copies were a tenth of the writer's time.
  const row = rowFields(p, f) as AuditRow;
  row.id = id;
  row.prev_hash = prevHash;
  row.hash = rowHash(prevHash, row, f.key);
  return row;
}

/** Give prepared fields their place in the chain: the only part a shared store must do while holding the chain. */
export function chainRow(fields: RowFields, id: number, prevHash: string, key: Buffer | undefined): AuditRow {
  const unhashed = { id, ...fields };
  return { ...unhashed, prev_hash: prevHash, hash: rowHash(prevHash, unhashed, key) };
}

/** Redact and serialise one record (the costly part, done before taking the chain). */
export function rowFields(p: PendingRecord, f: RowFormat): RowFields {
  const unhashed: RowFields = {
    time: Math.round(p.time),
    workflow_id: text(p.workflowId),
    step: p.step,
    parent_step: optionalInt(p.parentStep),
    agent: text(p.agent),
    user: text(p.user),
    chain: JSON.stringify(p.chain ?? []),
    kind: text(p.kind),
    server: text(p.server),
    tool: text(p.tool),
    args: argsJson(p.args, f),
    outcome: text(p.outcome),
    reason: text(p.reason),
    duration_ms: Number.isFinite(p.durationMs) ? Math.round(p.durationMs * 1000) / 1000 : 0,
    bytes: optionalInt(p.bytes),
    tokens: optionalInt(p.tokens),
    traceparent: text(p.traceparent),
  };
  if (p.model) {
    unhashed.model = text(p.model.name);
    unhashed.team = text(p.model.team);
    unhashed.cost_usd = Number.isFinite(p.model.costUsd) ? p.model.costUsd : 0;
    const bodies = p.model.bodies === undefined ? undefined : JSON.parse(argsJson(p.model.bodies, f) ?? 'null');
    unhashed.model_info = JSON.stringify(bodies === undefined ? p.model.info : { ...p.model.info, bodies });
  }
  return unhashed;
}

function argsJson(args: unknown, f: RowFormat): string | null {
  if (args === undefined) return null;
  let json: string;
  try {
    json = JSON.stringify(f.redactor(args)) ?? 'null';
  } catch (err) {
    return JSON.stringify({ $unserializable: (err as Error).message });
  }
  if (json.length <= f.maxArgsLength) return json;
  return JSON.stringify({ $truncated: true, length: json.length, preview: json.slice(0, 1024) });
}

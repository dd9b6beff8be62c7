/** The Step: one message on its way through the guard chain, and the refusal value guards return. */
import type { AgentManifest } from '../config/types.js';

/** Machine reasons for refusals (SPEC §7). */
export type RefusalReason =
  | 'unauthenticated'
  | 'policy_denied'
  | 'approval_denied'
  | 'budget_exceeded'
  | 'rate_limited'
  | 'loop_detected'
  | 'workflow_paused'
  | 'delegation_denied'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'invalid_request';

/** A refusal is a value; each adapter renders it in its own wire format. */
export interface Refusal {
  reason: RefusalReason;
  message: string;
  /** Extra fields for error.data (limit, used, resetAt, …). */
  data?: Record<string, unknown>;
  /** Render as "Unknown tool" (-32602) instead of -32030, so hidden names never leak. */
  asUnknown?: boolean;
}

/** Who is calling: resolved once per session / request by the authn guard. */
export interface Caller {
  agentId: string;
  /**
   * The exact credential's principal (issuer, subject, client, act chain and scope of a JWT, plus `jti` for a delegated
   * token; the key hash for an API key): a session answers only requests of the principal that opened it.
   */
  principal: string;
  /** The acting-for human (token `act`/`sub` of the root, or `owner`). */
  user?: string;
  /** Delegation chain, root first, this agent last. */
  chain: string[];
  agent?: AgentManifest;
  /** Claims of the verified token, when a token was presented. */
  claims?: Record<string, unknown>;
  /** Workflow named by a delegated token (`wf`) or an allowed X-Workflow-Id. */
  workflowId?: string;
  /** Delegated token scope globs, narrowing the agent's own tool policy. */
  scope?: string[];
  jti?: string;
  depth?: number;
  via: 'local' | 'jwt' | 'apikey' | 'delegated';
}

export type StepKind = 'tools/call' | 'resources/read' | 'prompts/get' | 'a2a/message' | 'model/call' | 'delegation';

export interface Step {
  kind: StepKind;
  caller: Caller;
  workflowId: string;
  stepNo: number;
  parentStep?: number;
  /** The federated server that serves it, once routed. */
  server?: string;
  /** Upstream-side name: tool name, prompt name or resource URI. */
  target: string;
  /** The name the client used (namespaced). */
  exposedName: string;
  /** The name is the client's own string, not (yet) confirmed by the upstream's list: metrics must not use it as a label. */
  unverified?: boolean;
  args?: Record<string, unknown>;
  startedAt: number;
  traceparent?: string;
  /** Tool annotations from the upstream listing, when known (for retries and approval). */
  annotations?: Record<string, unknown>;
}

export interface StepOutcome {
  outcome: 'ok' | 'error' | 'refused';
  reason?: RefusalReason | string;
  durationMs: number;
  bytes?: number;
  tokens?: number;
}

/** What a guard may need from the downstream session (e.g. to ask the human via elicitation). */
export interface GuardContext {
  /** Send a server-to-client request on the step's own stream; resolves with the client's result. */
  askClient?: (method: string, params: Record<string, unknown>) => Promise<Record<string, unknown>>;
  clientCapabilities?: Record<string, unknown>;
  signal?: AbortSignal;
}

/** A check allows (returns undefined) or refuses, spending nothing. Sync where it can be: the chain avoids promises when no check needs one. */
export type GuardCheck = (step: Step, ctx: GuardContext) => Refusal | undefined | Promise<Refusal | undefined>;

/**
 * A guard in phases (docs/decisions/0013-guard-phases.md): `check` may refuse and spends nothing; `commit` runs only
 * once every check allowed and reserves what the call uses (it may still refuse, atomically); `rollback` undoes this
 * guard's commit when a later commit refused; `after` sees the outcome of a committed step. Each may return a promise
 * when its store answers asynchronously (a shared store); the chain stays promise-free while none does.
 */
export interface PhasedGuard {
  check?: GuardCheck;
  commit?(step: Step): Refusal | undefined | Promise<Refusal | undefined>;
  rollback?(step: Step): void | Promise<void>;
  after?(step: Step, outcome: StepOutcome): void | Promise<void>;
}

/** A plain function is a guard with only a check. */
export type Guard = GuardCheck | PhasedGuard;

/** Called once per finished step (ok, error or refused). Must not block the response path. */
export interface StepSink {
  record(step: Step, outcome: StepOutcome): void | Promise<void>;
}

export type WorkflowState = 'active' | 'paused' | 'tripped' | 'killed' | 'done';

/**
 * The workflow registry as the gateway and the guards see it. A workflow is the tree of steps under one root
 * (a root MCP session, A2A task or model call); delegated tokens carry its id so sub-agents join the same tree.
 */
export interface WorkflowControl {
  /** Start a workflow for a root session/task; returns its id. */
  begin(init: { caller: Caller; kind: 'mcp' | 'a2a' | 'model'; id?: string; traceparent?: string }): string;
  /** Allocate the next step number in a workflow (1-based, monotonic, survives restarts). */
  nextStep(workflowId: string): number;
  state(workflowId: string): WorkflowState | undefined;
  setState(workflowId: string, state: WorkflowState, why?: string): void;
  /** Called when a workflow's state changes (e.g. kill must cancel in-flight calls and end sessions). */
  onStateChange(listener: (workflowId: string, state: WorkflowState, why?: string) => void): void;
}

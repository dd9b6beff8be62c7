/** The Step: one message on its way through the guard chain, and the refusal value guards return. */
import type { AgentManifest } from '../config/types.js';
import type { Awaitable } from '../stores/types.js';

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

export type StepKind = 'tools/call' | 'resources/read' | 'prompts/get' | 'a2a/message' | 'model/call' | 'delegation' | 'approval';

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
  /** Model calls: the model and what admission reserves for it. */
  model?: ModelStepInfo;
}

/** What a model step is about, known before it is forwarded. */
export interface ModelStepInfo {
  /** The gateway's model name (gateway.yaml `models[].name`). */
  model: string;
  provider: string;
  upstreamModel: string;
  /** Reserved at admission: input tokens counted, plus the output asked for (capped); its price in USD. */
  reserve: { tokens: number; costUsd: number; inputTokens: number };
  /** Digest of model + messages + tools: identical requests count toward `loop.sameCall`. */
  fingerprint: string;
}

/** What a model step cost, known once it ran (or failed). */
export interface ModelOutcome {
  /** The model that answered (a fallback's name when the first one failed). */
  model: string;
  upstreamModel: string;
  provider: string;
  tokens: { input: number; output: number; cachedInput: number };
  costUsd: number;
  tokensEstimated?: boolean;
  finishReason?: string;
  /** Time to first token (streams) or to the provider's answer. */
  ttftMs?: number;
  /** Prompt and completion as `audit.modelBodies` asks: a digest, or the bodies themselves. */
  bodies?: unknown;
}

export interface StepOutcome {
  outcome: 'ok' | 'error' | 'refused';
  reason?: RefusalReason | string;
  durationMs: number;
  bytes?: number;
  tokens?: number;
  /** Model calls: usage, cost and timing. */
  model?: ModelOutcome;
}

/** What a guard asks a human about one held call; the adapter decides who answers (SPEC §10). */
export interface HumanQuestion {
  step: Step;
  /** The whole question as one line of text, arguments in full. */
  message: string;
  /** JSON Schema of the answer form. */
  schema: Record<string, unknown>;
  /** `approval: human` lets the calling client answer through elicitation; `approval: console` never does. */
  clientMayAnswer: boolean;
}

export interface HumanAnswer {
  outcome: 'approved' | 'denied' | 'expired' | 'cancelled' | 'unavailable';
  /** Who decided: an admin token, the calling client, or the gateway (timeout). */
  by?: string;
  /** The decider's reason, or why nobody could be asked. */
  reason?: string;
  via: 'client' | 'queue' | 'none';
}

/** What a guard may need from the downstream session (e.g. to ask the human via elicitation). */
export interface GuardContext {
  /** Ask a human to approve a held call: the adapter answers through elicitation or the approval queue. */
  askHuman?: (question: HumanQuestion) => Promise<HumanAnswer>;
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
  /** Allocate the next step number in a workflow (1-based, monotonic across replicas, survives restarts); a shared store answers with a promise. */
  nextStep(workflowId: string): Awaitable<number>;
  state(workflowId: string): WorkflowState | undefined;
  /** A shared store answers with a promise once the change is persisted; illegal or unknown throw (or reject) WorkflowError. */
  setState(workflowId: string, state: WorkflowState, why?: string): Awaitable<void>;
  /** Called when a workflow's state changes (e.g. kill must cancel in-flight calls and end sessions). */
  onStateChange(listener: (workflowId: string, state: WorkflowState, why?: string) => void): void;
}

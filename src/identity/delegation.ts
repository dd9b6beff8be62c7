/**
 * RFC 8693 token exchange for sub-agents: a caller trades its own token for a shorter-lived, narrower token naming a
 * child agent. Each exchange is a `delegation` step through the Step pipeline with the endpoint's own checks; every
 * refusal is audited with reason `delegation_denied`.
 */
import { randomUUID } from 'node:crypto';
import type { AgentManifest } from '../config/types.js';
import { GuardChain } from '../gateway/chain.js';
import { runPipeline } from '../gateway/pipeline.js';
import type { Caller, GuardCheck, Refusal, Step, StepSink, WorkflowControl, WorkflowState } from '../gateway/types.js';
import type { DelegationLimits } from '../limits/delegation.js';
import { compileGlobs } from '../util/glob.js';
import type { AuthInput, AuthOutcome } from './authenticate.js';
import { narrowScope } from './delegation-policy.js';
import type { DelegationTokenStore } from '../stores/delegation.js';
import type { LiveAgents } from './policy.js';
import { LOCAL_AGENT_ID } from './registry.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const SUBJECT_TOKEN_TYPES: ReadonlySet<string> = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]);
/** Live children of the local agent when it has no manifest to say otherwise. */
const LOCAL_MAX_CHILDREN = 64;

export interface ExchangeRequest {
  subjectToken?: string;
  subjectTokenType?: string;
  /** The child agent id. */
  audience?: string;
  /** Space-separated tool globs narrowing the child further. */
  scope?: string;
  /** A toolCalls slice for the child and everything it delegates to. */
  budget?: string | number;
  /** Needed in local mode, where only loopback callers are accepted. */
  remoteAddress?: string;
}

export interface ExchangeSuccess {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
}

export type ExchangeErrorCode = 'invalid_request' | 'invalid_grant' | 'invalid_target' | 'invalid_scope';

export interface ExchangeFailure {
  error: ExchangeErrorCode;
  error_description: string;
  status: 400 | 401;
}

export type ExchangeResult = ExchangeSuccess | ExchangeFailure;

export interface DelegationDeps {
  /** The gateway's Authenticator: issuer JWTs, API keys and tokens it minted itself. */
  authenticate(input: AuthInput): AuthOutcome | Promise<AuthOutcome>;
  agents: LiveAgents;
  sign(claims: Record<string, unknown>): Promise<string>;
  store: DelegationTokenStore;
  limits: DelegationLimits;
  workflows: WorkflowControl;
  /** The gateway's public URL: `iss` and `aud` of minted tokens. */
  issuer(): string;
  maxTokenSeconds(): number;
  /** Where steps go (the gateway's sinks: audit, metrics, log). */
  sinks(): readonly StepSink[];
  /** The workflow of the parent's live session, for a parent token that names none. */
  currentWorkflowOf?(caller: Caller): string | undefined;
  localMode?(): boolean;
  now?(): number;
}

export function isExchangeFailure(r: ExchangeResult): r is ExchangeFailure {
  return 'error' in r;
}

function failure(error: ExchangeErrorCode, description: string, status: 400 | 401 = 400): ExchangeFailure {
  return { error, error_description: description, status };
}

function isStopped(state: WorkflowState | undefined): boolean {
  return state === 'paused' || state === 'tripped' || state === 'killed';
}

function numberClaim(caller: Caller, name: string): number | undefined {
  const v = caller.claims?.[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function parseBudget(raw: string | number | undefined): number | undefined | Error {
  if (raw === undefined || raw === '') return undefined;
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(n) || n < 1) return new Error(`budget must be a whole number of tool calls (1 or more), got "${raw}"`);
  return n;
}

/** The deepest absolute depth a child of this chain may sit at: the tightest `maxDepth` along the chain wins. */
function deepestAllowed(chain: readonly string[], manifests: ReadonlyArray<AgentManifest | undefined>): number {
  let deepest = Number.POSITIVE_INFINITY;
  chain.forEach((id, depth) => {
    const m = manifests[depth];
    const hops = m ? m.delegation.maxDepth : id === LOCAL_AGENT_ID ? Number.POSITIVE_INFINITY : 0;
    deepest = Math.min(deepest, depth + hops);
  });
  return deepest;
}

/** The nested RFC 8693 §4.1 `act` claim for a token minted for `parent`'s child: the parent is the current actor. */
function actFor(parent: Caller): Record<string, unknown> {
  const prior = parent.via === 'delegated' ? parent.claims?.act : undefined;
  return prior && typeof prior === 'object' ? { sub: parent.agentId, act: prior } : { sub: parent.agentId };
}

/** The token endpoint's steps walk only its own checks: the gateway's guard chain judges calls, not delegations. */
const NO_GUARDS = new GuardChain();

const denied = (error: ExchangeErrorCode, message: string): Refusal => ({ reason: 'delegation_denied', message, data: { error } });

export async function exchange(req: ExchangeRequest, deps: DelegationDeps): Promise<ExchangeResult> {
  const now = deps.now ?? Date.now;
  if (!req.subjectToken) return failure('invalid_request', 'subject_token is missing; send the calling agent\'s own token as subject_token');
  if (!req.subjectTokenType || !SUBJECT_TOKEN_TYPES.has(req.subjectTokenType)) {
    return failure('invalid_request', `subject_token_type must be ${ACCESS_TOKEN_TYPE} (or ${JWT_TOKEN_TYPE}), got "${req.subjectTokenType ?? ''}"`);
  }
  const audience = req.audience?.trim();
  if (!audience) return failure('invalid_request', 'audience is missing; name the child agent id from agents.d');
  const budget = parseBudget(req.budget);
  if (budget instanceof Error) return failure('invalid_request', budget.message);
  const requestedScope = req.scope?.split(/\s+/).filter(Boolean);

  let auth = deps.authenticate({ authorization: `Bearer ${req.subjectToken}`, remoteAddress: req.remoteAddress });
  if (auth instanceof Promise) auth = await auth;
  if (!auth.ok) return failure('invalid_grant', `The subject_token was refused: ${auth.message}`);
  const parent = auth.caller;
  if (parent.jti && deps.store.isRevoked(parent.jti)) {
    return failure('invalid_grant', 'The subject_token was revoked; the delegating agent needs a new token');
  }

  let workflowId = parent.workflowId ?? deps.currentWorkflowOf?.(parent);
  workflowId ??= deps.workflows.begin({ caller: parent, kind: 'mcp' });
  const step: Step = {
    kind: 'delegation',
    caller: parent,
    workflowId,
    stepNo: 0,
    parentStep: numberClaim(parent, 'pstep'),
    target: audience,
    exposedName: audience,
    args: { audience, ...(requestedScope ? { scope: requestedScope.join(' ') } : {}), ...(budget !== undefined ? { budget } : {}) },
    startedAt: now(),
  };
  const wf = workflowId;

  // Each check reads what the ones before it established; the first refusal ends the exchange as a refused step.
  const chainManifests = parent.chain.map((id) => deps.agents.get(id));
  const parentAgent = chainManifests[chainManifests.length - 1];
  const parentDepth = parent.depth ?? parent.chain.length - 1;
  const nodeKey = parent.jti ?? `${parent.agentId}@${workflowId}`;
  let narrowed: ReturnType<typeof narrowScope> | undefined;
  let exp = 0;
  let nowSec = 0;
  const jti = randomUUID();
  let reserved = false;
  const checks: GuardCheck[] = [
    () => {
      const state = deps.workflows.state(wf);
      if (!isStopped(state)) return undefined;
      return denied('invalid_grant', `Workflow ${wf} is ${state}; tokens minted in it cannot delegate until an admin resumes it (POST /admin/api/workflows/${wf}/resume)`);
    },
    () => {
      const localRoot = parent.chain[0] === LOCAL_AGENT_ID && !chainManifests[0] && (deps.localMode?.() ?? false);
      const missing = parent.chain.find((id, i) => !chainManifests[i] && !(i === 0 && localRoot));
      return missing ? denied('invalid_grant', `Agent ${missing} of the delegation chain is no longer in agents.d; start again from a valid token`) : undefined;
    },
    () => {
      if (!deps.agents.get(audience)) return denied('invalid_target', `No agent "${audience}" in agents.d; audience must be the id of the child agent`);
      const mayDelegateTo = parentAgent ? compileGlobs(parentAgent.delegation.agents) : () => true;
      if (mayDelegateTo(audience)) return undefined;
      return denied('invalid_target', `Agent ${parent.agentId} may not delegate to ${audience}; an admin can add it to delegation.agents of ${parent.agentId} in agents.d`);
    },
    () => {
      const limited = deps.limits.checkDepth(parentDepth + 1, deepestAllowed(parent.chain, chainManifests));
      return limited ? denied('invalid_target', limited.message) : undefined;
    },
    () => {
      narrowed = narrowScope(requestedScope, parent.scope, chainManifests);
      return narrowed.ok ? undefined : denied('invalid_scope', narrowed.message);
    },
    () => {
      const parentBudget = numberClaim(parent, 'budget');
      if (budget === undefined || parentBudget === undefined || budget <= parentBudget) return undefined;
      return denied('invalid_request', `budget ${budget} is more than the delegating token's own budget of ${parentBudget} tool calls; ask for ${parentBudget} or less`);
    },
    () => {
      nowSec = Math.floor(now() / 1000);
      exp = Math.min(nowSec + deps.maxTokenSeconds(), numberClaim(parent, 'exp') ?? Number.POSITIVE_INFINITY);
      return exp <= nowSec ? denied('invalid_grant', 'The subject_token expires now; the delegating agent needs a fresh token first') : undefined;
    },
    // Last, so a slot is only taken once every other check passed; shared by every replica when state.redis is set.
    async () => {
      const maxChildren = parentAgent ? parentAgent.delegation.maxChildren : LOCAL_MAX_CHILDREN;
      const limited = await deps.limits.reserveChild(nodeKey, jti, exp * 1000, maxChildren);
      reserved = limited === undefined;
      return limited ? denied('invalid_target', limited.message) : undefined;
    },
  ];

  const mint = async (): Promise<ExchangeSuccess> => {
    const scope = narrowed?.ok ? narrowed.scope : undefined;
    const issuer = deps.issuer();
    const claims: Record<string, unknown> = {
      iss: issuer,
      aud: issuer,
      sub: audience,
      act: actFor(parent),
      wf,
      depth: parentDepth + 1,
      pstep: step.stepNo,
      iat: nowSec,
      exp,
      jti,
      ...(parent.user ? { usr: parent.user } : {}),
      ...(scope ? { scope: scope.join(' ') } : {}),
      ...(budget !== undefined ? { budget } : {}),
    };
    const accessToken = await deps.sign(claims);
    await deps.store.record({
      jti,
      parentJti: parent.jti,
      parentNode: nodeKey,
      workflowId: wf,
      agent: audience,
      parentAgent: parent.agentId,
      depth: parentDepth + 1,
      scope,
      budgetToolCalls: budget,
      delegatingStep: step.stepNo,
      issuedAt: nowSec * 1000,
      expiresAt: exp * 1000,
    });
    return {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: exp - nowSec,
      ...(scope ? { scope: scope.join(' ') } : {}),
    };
  };

  // A slot taken for a token that was never issued (signing or recording failed) is given back at once.
  const giveBack = async () => {
    if (reserved) await deps.limits.removeChild(nodeKey, jti);
  };
  let result: Awaited<ReturnType<typeof runPipeline<ExchangeSuccess>>>;
  try {
    result = await runPipeline({ chain: NO_GUARDS, sinks: deps.sinks(), workflows: deps.workflows, now }, step, {
      checks,
      route: async () => ({ value: await mint(), outcome: 'ok' }),
    });
  } catch (err) {
    await giveBack().catch(() => {}); // the slot lapses at the token's expiry anyway; the mint error is the one to report
    throw err;
  }
  if (result.kind === 'done') return result.value;
  await giveBack();
  if (result.kind === 'refused') return failure((result.refusal.data?.error as ExchangeErrorCode | undefined) ?? 'invalid_request', result.refusal.message);
  throw new Error('a token exchange names no tool or resource, so it cannot end as an unknown name');
}

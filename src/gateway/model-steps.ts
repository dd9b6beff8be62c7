/**
 * Model calls as Steps: which workflow a call joins (docs/decisions/0021-model-call-workflows.md), then `runPipeline`
 * like every other Step (guards with the token and cost reservation, numbering, recording with the model fields).
 * The plan names no `breaker` and no `retryable`: the connector (ModelProviders.forward) already keeps a circuit per
 * provider and falls back to the next model, so an answer may come from another provider than the step names; the
 * pipeline's circuit, keyed by the step's server, would blame the wrong one, and a retry would pay twice.
 */
import { LRUCache } from 'lru-cache';
import { chooseWorkflow } from '../identity/workflow-choice.js';
import { mapAwaitable, type Awaitable } from '../stores/types.js';
import type { GuardChain } from './chain.js';
import { runPipeline, type PipelineResult, type Routed } from './pipeline.js';
import type { Caller, ModelStepInfo, Refusal, Step, StepSink, WorkflowControl } from './types.js';

/** Read access to workflows the route needs beyond WorkflowControl: who started one, and which one a trace belongs to. */
export interface WorkflowLookup {
  /** The agent that started the workflow, or undefined when there is none with this id (a shared store answers with a promise). */
  agentOf(workflowId: string): Awaitable<string | undefined>;
  /** The newest workflow whose traceparent carries this W3C trace id. */
  byTraceId(traceId: string): Awaitable<string | undefined>;
}

export interface ModelStepsDeps {
  workflows: WorkflowControl;
  lookup: WorkflowLookup;
  chain: GuardChain;
  sinks: readonly StepSink[];
  /** Whether the caller may name any workflow (agents.d canSetWorkflow; local without a manifest). */
  mayJoinWorkflow: (caller: Caller) => boolean;
  /** How long an untagged caller's workflow stays its own without a call (gateway.yaml sessions.idleSeconds). */
  idleMs: () => number;
}

/** One admitted-or-refused model call, once it is placed in a workflow. */
export interface ModelCall {
  caller: Caller;
  workflowId: string;
  info: ModelStepInfo;
  traceparent: string | undefined;
  /** What the trail keeps of the prompt (`audit.modelBodies`). */
  args?: Record<string, unknown>;
}

export type Placement = { ok: true; workflowId: string } | { ok: false; status: 400 | 403; refusal: Refusal };

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

export function validTraceparent(v: string | undefined): string | undefined {
  return v !== undefined && TRACEPARENT.test(v) ? v : undefined;
}

export class ModelSteps {
  /** The workflow untagged calls of one credential join while they keep coming (principal → workflow). */
  readonly #ambient = new LRUCache<string, { workflowId: string; lastUsed: number }>({ max: 50_000 });

  constructor(private readonly deps: ModelStepsDeps) {}

  /**
   * The workflow a call joins: a delegated token's `wf`; an X-Workflow-Id of the caller's own agent or delegation
   * chain (any with canSetWorkflow); a traceparent whose trace id belongs to such a workflow; else the caller's own
   * untagged-call workflow, started on first use and kept while calls keep coming.
   */
  place(caller: Caller, requested: string | undefined, traceparent: string | undefined): Awaitable<Placement> {
    const choice = chooseWorkflow(caller, requested, this.deps.mayJoinWorkflow);
    if (!choice.ok) return { ok: false, status: 403, refusal: { reason: 'delegation_denied', message: choice.message, data: { workflowId: choice.workflowId } } };
    if (choice.workflowId !== undefined) return this.#join(caller, choice.workflowId, traceparent);
    if (requested !== undefined) {
      return mapAwaitable(this.#mayJoinOwn(caller, requested), (may): Placement => {
        if (may) return this.#join(caller, requested, traceparent);
        return {
          ok: false,
          status: 403,
          refusal: {
            reason: 'policy_denied',
            message: `X-Workflow-Id ${requested.slice(0, 80)} is not a workflow of agent ${caller.agentId} or its delegation chain; drop the header to start one, or an admin can grant canSetWorkflow in agents.d.`,
          },
        };
      });
    }
    const traceId = traceparent ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
    return mapAwaitable(traceId ? this.deps.lookup.byTraceId(traceId) : undefined, (traced) => {
      if (!traced) return this.#ambientOf(caller, traceparent);
      if (this.deps.mayJoinWorkflow(caller)) return this.#join(caller, traced, traceparent);
      return mapAwaitable(this.#mayJoinOwn(caller, traced), (may) => (may ? this.#join(caller, traced, traceparent) : this.#ambientOf(caller, traceparent)));
    });
  }

  #mayJoinOwn(caller: Caller, workflowId: string): Awaitable<boolean> {
    return mapAwaitable(this.deps.lookup.agentOf(workflowId), (owner) => owner !== undefined && (owner === caller.agentId || caller.chain.includes(owner)));
  }

  #join(caller: Caller, id: string, traceparent: string | undefined): Placement {
    try {
      return { ok: true, workflowId: this.deps.workflows.begin({ caller, kind: 'model', id, traceparent }) };
    } catch (err) {
      return { ok: false, status: 400, refusal: { reason: 'invalid_request', message: (err as Error).message } };
    }
  }

  #ambientOf(caller: Caller, traceparent: string | undefined): Placement {
    const now = Date.now();
    const key = caller.principal;
    const known = this.#ambient.get(key);
    if (known && now - known.lastUsed < this.deps.idleMs()) {
      const state = this.deps.workflows.state(known.workflowId);
      // A paused or tripped workflow keeps its calls, so they are refused until an admin resumes it.
      if (state === 'active' || state === 'paused' || state === 'tripped') {
        known.lastUsed = now;
        return { ok: true, workflowId: known.workflowId };
      }
    }
    const workflowId = this.deps.workflows.begin({ caller, kind: 'model', traceparent });
    this.#ambient.set(key, { workflowId, lastUsed: now });
    return { ok: true, workflowId };
  }

  /**
   * Run one model call through the pipeline: checks, the commits (the token and cost reservation), numbering, then
   * `route`, which relays the answer as it arrives and resolves once the provider is done; `after` reconciles the
   * reservation with the usage it reports (or releases it), and every sink records the step with its model fields.
   */
  run<T>(call: ModelCall, route: (step: Step) => Promise<Routed<T>>): Promise<PipelineResult<T>> {
    const step: Step = {
      kind: 'model/call',
      caller: call.caller,
      workflowId: call.workflowId,
      stepNo: 0,
      server: call.info.provider,
      target: call.info.model,
      exposedName: call.info.model,
      args: call.args,
      startedAt: Date.now(),
      traceparent: call.traceparent,
      model: call.info,
    };
    return runPipeline(this.deps, step, { route: () => route(step) });
  }
}

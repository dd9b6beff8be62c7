/**
 * A2A messages as Steps: which workflow a message belongs to (a task and its follow-ups join one; a new context
 * starts one of kind 'a2a'), and the run of each through the Step pipeline (`a2a.allow`, guards, breaker, record).
 */
import type { Gateway } from '../gateway/gateway.js';
import type { Caller, Refusal, Step } from '../gateway/types.js';
import { runPipeline, type PipelineResult } from '../gateway/pipeline.js';
import type { RelayOutcome } from './a2a-relay.js';
import { mayUse, refusedIds, type TaskOwner } from '../upstream/a2a-owners.js';
import { a2aAllowed, a2aPolicyRefusal } from '../gateway/guards/a2a-allow.js';
import { setStateQuietly } from '../stores/workflows.js';

/** Methods that change a task (they are Steps); the others are reads, policy-checked and counted like list calls. */
export const STEP_METHODS: ReadonlySet<string> = new Set(['SendMessage', 'SendStreamingMessage', 'CancelTask']);

const MAX_REMEMBERED = 20_000;

/** What a reply told us about the task it concerns. */
export interface TaskObservation {
  taskId?: string;
  contextId?: string;
  /** Short state name (completed, input-required, …). */
  state?: string;
}

interface Membership {
  workflowId: string;
  /** Only the agent that started a task or context may continue it in the same workflow. */
  callerId: string;
  /** The step that started the task: follow-ups hang under it in the workflow tree. */
  firstStep: number;
  /** The workflow began with this context (not joined from elsewhere): it is done when its tasks end. */
  root: boolean;
  /** Federated agent serving the task, for requests to the gateway's own /a2a endpoint. */
  agent: string;
}

/** A bounded map that forgets the oldest entries first. */
class Recent<V> extends Map<string, V> {
  override set(key: string, value: V): this {
    if (this.has(key)) this.delete(key);
    else if (this.size >= MAX_REMEMBERED) this.delete(this.keys().next().value as string);
    return super.set(key, value);
  }
}

const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected']);

function isTransportFailure(reason: string | undefined): boolean {
  return reason === 'upstream_unavailable' || reason === 'upstream_timeout';
}

export interface StepRequest {
  caller: Caller;
  agent: string;
  method: string;
  /** Message text, task and context named by the request (for the workflow and the audit trail). */
  text?: string;
  taskId?: string;
  contextId?: string;
  /** A workflow the caller may name (delegated `wf`, allowed X-Workflow-Id). */
  joinWorkflow?: string;
  traceparent?: string;
  signal?: AbortSignal;
}

export class A2aSteps {
  private readonly tasks = new Recent<Membership>();
  private readonly contexts = new Recent<Membership>();
  /** Whether a step's workflow began with it, until its reply tells us which task it concerns. */
  private readonly pending = new WeakMap<Step, { root: boolean; firstStep?: number }>();

  constructor(private readonly gw: Gateway) {}

  /** The federated agent that served a task or context, for requests that do not name one. */
  agentOf(ids: { taskId?: string; contextId?: string }): string | undefined {
    return (ids.taskId ? this.tasks.get(ids.taskId)?.agent : undefined) ?? (ids.contextId ? this.contexts.get(ids.contextId)?.agent : undefined);
  }

  /**
   * The agent behind the gateway sees one client, the gateway; keeping callers apart is ours to do, with the same
   * rule as the `{name}__*` MCP tools: a task the caller does not own (an unknown one too) is answered as if it did
   * not exist, and a context another caller started cannot be continued.
   */
  refusedIds(caller: Caller, agent: string, ids: { taskId?: string; contextId?: string }): Promise<'task' | 'context' | undefined> {
    return refusedIds(this.gw.a2a.owners, agent, caller, ids);
  }

  private async ownerOf(agent: string, ids: { taskId?: string; contextId?: string }): Promise<TaskOwner | undefined> {
    const owners = this.gw.a2a.owners;
    return (ids.taskId ? await owners.ownerOf(agent, 'task', ids.taskId) : undefined) ?? (ids.contextId ? await owners.ownerOf(agent, 'context', ids.contextId) : undefined);
  }

  /** The workflow a task or context belongs to, when this caller may see it (for reads such as SubscribeToTask). */
  async workflowOf(caller: Caller, agent: string, ids: { taskId?: string; contextId?: string }): Promise<string | undefined> {
    const owner = await this.ownerOf(agent, ids);
    return owner && mayUse(caller, owner) ? owner.workflowId : undefined;
  }

  /** Tasks a caller may see in ListTasks: its own; local without a manifest sees all. */
  visibleTo(caller: Caller, agent: string): (taskId: string) => Promise<boolean> {
    if (caller.via === 'local' && !caller.agent) return async () => true;
    return async (taskId) => mayUse(caller, await this.gw.a2a.owners.ownerOf(agent, 'task', taskId));
  }

  /** Reads (GetTask, ListTasks, SubscribeToTask, …): policy only, counted rather than recorded one by one. */
  checkRead(caller: Caller, agent: string, method: string): Refusal | undefined {
    if (!a2aAllowed(caller, agent)) return a2aPolicyRefusal(caller, agent);
    this.gw.countCall?.(caller.agentId, `a2a/${method}`);
    return undefined;
  }

  /** Place a message in its workflow as a Step (not yet numbered: the pipeline numbers it when it is routed or recorded). */
  async place(r: StepRequest): Promise<Step> {
    const known = (r.taskId ? this.tasks.get(r.taskId) : undefined) ?? (r.contextId ? this.contexts.get(r.contextId) : undefined);
    // A delegated token stays in its own workflow, even when it continues a task its agent began elsewhere.
    const bound = r.caller.workflowId;
    const continues = known && known.callerId === r.caller.agentId && (bound === undefined || known.workflowId === bound) ? known : undefined;
    // A task or context an earlier step of the same agent started (an MCP tool call, or before a restart): join its
    // workflow, under that step.
    const origin = continues ? undefined : await this.ownerOf(r.agent, r);
    const fromMcp = origin && origin.agentId === r.caller.agentId && (bound === undefined || origin.workflowId === bound) ? origin : undefined;
    const joinId = continues?.workflowId ?? fromMcp?.workflowId ?? r.joinWorkflow ?? r.caller.workflowId;
    // begin() on a known id rejoins it (a done workflow becomes active again when its conversation goes on).
    const workflowId = this.gw.workflows.begin({ caller: r.caller, kind: 'a2a', id: joinId, traceparent: r.traceparent });
    const step: Step = {
      kind: 'a2a/message',
      caller: r.caller,
      workflowId,
      stepNo: 0,
      parentStep: continues && r.taskId && this.tasks.get(r.taskId) === continues ? continues.firstStep : fromMcp?.stepNo,
      server: r.agent,
      target: r.method,
      exposedName: `${r.agent}/${r.method}`,
      args: { ...(r.text !== undefined ? { message: r.text } : {}), ...(r.taskId ? { taskId: r.taskId } : {}), ...(r.contextId ? { contextId: r.contextId } : {}) },
      startedAt: Date.now(),
      traceparent: r.traceparent,
    };
    this.pending.set(step, { root: continues ? continues.root : joinId === undefined, firstStep: fromMcp?.stepNo });
    return step;
  }

  /**
   * Walk a placed Step through the pipeline: the caller's `a2a.allow`, the guard chain, the agent's circuit; `relay`
   * carries the message (and writes the reply) once every guard allowed. A refusal comes back recorded, to render.
   */
  run(step: Step, relay: () => Promise<RelayOutcome>, signal?: AbortSignal): Promise<PipelineResult<undefined>> {
    const agent = step.server ?? '';
    return runPipeline(this.gw, step, {
      ctx: { signal },
      checks: [(s) => (a2aAllowed(s.caller, agent) ? undefined : a2aPolicyRefusal(s.caller, agent))],
      breaker: agent,
      signal,
      route: async () => {
        const outcome = await relay();
        await this.observe(step, outcome.seen);
        // The reply has been written as it came: a failed relay feeds the breaker but is not sent again.
        return { value: undefined, outcome: outcome.ok ? 'ok' : 'error', reason: outcome.reason, transportFailure: isTransportFailure(outcome.reason), final: true };
      },
    });
  }

  /** Remember what the reply said about the task, so follow-ups join this workflow; its owner is recorded in the store. */
  async observe(step: Step, seen: TaskObservation): Promise<void> {
    const pending = this.pending.get(step);
    const root = pending?.root ?? false;
    const existing = seen.taskId ? this.tasks.get(seen.taskId) : undefined;
    const entry: Membership = existing ?? { workflowId: step.workflowId, callerId: step.caller.agentId, firstStep: pending?.firstStep ?? step.stepNo, root, agent: step.server ?? '' };
    if (seen.taskId) this.tasks.set(seen.taskId, entry);
    if (seen.contextId && !this.contexts.has(seen.contextId)) this.contexts.set(seen.contextId, entry);
    const owner: TaskOwner = { agentId: entry.callerId, workflowId: entry.workflowId, stepNo: entry.firstStep };
    const server = step.server ?? '';
    const owners = this.gw.a2a.owners;
    const claims = [seen.taskId ? owners.claim(server, 'task', seen.taskId, owner) : undefined, seen.contextId ? owners.claim(server, 'context', seen.contextId, owner) : undefined];
    if (seen.state && TERMINAL.has(seen.state) && entry.root && this.gw.workflows.state(entry.workflowId) === 'active') {
      // A concurrent admin action won the transition; its state stands.
      setStateQuietly(this.gw.workflows, entry.workflowId, 'done', `A2A task ${seen.state}`, () => {});
    }
    await Promise.all(claims);
  }
}

/**
 * Guard: stop a workflow that repeats itself; the workflow is set to `tripped` so an admin sees why and can resume it.
 * `check` asks whether the call would trip; `commit` checks again and records it in the history; `rollback` takes it back.
 */
import { DEFAULT_LOOP_SETTINGS, type LoopDetector, type LoopSettings, type LoopTrip } from '../../limits/loop.js';
import type { AgentManifest } from '../../config/types.js';
import type { Awaitable } from '../../stores/types.js';
import type { PhasedGuard, Refusal, Step, StepKind, WorkflowControl } from '../types.js';
import { setStateQuietly } from '../../stores/workflows.js';

export interface LoopGuardOptions {
  detector: LoopDetector;
  workflows: Pick<WorkflowControl, 'setState' | 'onStateChange'>;
  /** Settings for agents without `limits.loop`; omitted: such agents are not checked. */
  defaults?: Partial<LoopSettings>;
  /** The live manifest of an agent by id, so a reload of agents.d changes `limits.loop` for open sessions too. */
  agentById?: (id: string) => AgentManifest | undefined;
}

/** Every kind of call that can loop; a model call is identified by model + messages + tools (its fingerprint). */
const CHECKED_KINDS: ReadonlySet<StepKind> = new Set<StepKind>(['tools/call', 'resources/read', 'prompts/get', 'a2a/message', 'model/call']);
/** Most workflow ids remembered as having a history recorded here (a done forgets one). */
const MAX_RECORDED = 100_000;

/** What identifies a call for loop detection: its arguments, or a model request's fingerprint (the prompt is never kept). */
function callArgs(step: Step): Record<string, unknown> | undefined {
  return step.model ? { request: step.model.fingerprint } : step.args;
}

type LoopConfig = NonNullable<AgentManifest['limits']['loop']>;

export function resolveLoopSettings(agentLoop: LoopConfig | undefined, defaults?: Partial<LoopSettings>): LoopSettings | undefined {
  if (!agentLoop && !defaults) return undefined;
  const sameCall = agentLoop?.sameCall ?? defaults?.sameCall ?? DEFAULT_LOOP_SETTINGS.sameCall;
  const windowSeconds = agentLoop?.windowSeconds ?? defaults?.windowSeconds ?? DEFAULT_LOOP_SETTINGS.windowSeconds;
  const cycle = agentLoop?.cycle ?? defaults?.cycle;
  return cycle === undefined ? { sameCall, windowSeconds } : { sameCall, windowSeconds, cycle };
}

/** One line for the admin console, stored as the workflow's `why`. */
export function describeTrip(trip: LoopTrip): string {
  if (trip.kind === 'cycle' && trip.pattern) {
    const names = trip.pattern.map((c) => c.tool).join(' → ');
    return `loop detected: the cycle ${names} repeated ${trip.count} times within ${trip.windowSeconds} s`;
  }
  return `loop detected: ${trip.call.tool} called ${trip.count} times with the same arguments within ${trip.windowSeconds} s`;
}

export function loopRefusal(workflowId: string, trip: LoopTrip): Refusal {
  const data: Record<string, unknown> = {
    workflowId,
    call: trip.call,
    count: trip.count,
    windowSeconds: trip.windowSeconds,
  };
  if (trip.pattern) data.pattern = trip.pattern;
  const what = describeTrip(trip);
  return {
    reason: 'loop_detected',
    message:
      `${what[0]!.toUpperCase()}${what.slice(1)}. Workflow ${workflowId} is stopped; ` +
      `change approach instead of repeating the call. An admin can resume it with POST /admin/api/workflows/${workflowId}/resume.`,
    data,
  };
}

/** The loop guard, and whether it looks at a step at all (it has loop settings for the step's agent and kind). */
export interface LoopGuard extends PhasedGuard {
  watches(step: Step): boolean;
}

export function createLoopGuard(opts: LoopGuardOptions): LoopGuard {
  const { detector, workflows, defaults, agentById } = opts;
  // Workflows this replica recorded calls for: most finish with none (no loop settings), and a done needs no delete then.
  const recorded = new Set<string>();
  const noteRecorded = (workflowId: string): void => {
    if (recorded.has(workflowId)) return;
    // The oldest go first; a history only another replica wrote, or one dropped here, expires with its TTL.
    if (recorded.size >= MAX_RECORDED) recorded.delete(recorded.values().next().value!);
    recorded.add(workflowId);
  };
  // A resumed workflow starts with a clean history, or its next call would trip again at once.
  workflows.onStateChange((workflowId, state) => {
    if (state !== 'active' && state !== 'killed' && state !== 'done') return;
    if (!recorded.delete(workflowId) && state === 'done') return;
    const reset = detector.reset(workflowId);
    // A store that could not forget leaves an old history: the worst case is one early trip, which an admin can resume.
    if (reset instanceof Promise) reset.catch(() => undefined);
  });
  const defaultSettings = resolveLoopSettings(undefined, defaults);
  // Resolved settings per manifest `limits.loop` object, so the hot path does not rebuild them for every call.
  const settingsCache = new WeakMap<LoopConfig, LoopSettings>();
  const settingsOf = (step: Step): LoopSettings | undefined => {
    if (!CHECKED_KINDS.has(step.kind)) return undefined;
    const agent = agentById ? agentById(step.caller.agentId) : step.caller.agent;
    const own = agent?.limits.loop;
    if (!own) return defaultSettings;
    let s = settingsCache.get(own);
    if (!s) settingsCache.set(own, (s = resolveLoopSettings(own, defaults)!));
    return s;
  };
  const tripped = (step: Step, trip: LoopTrip): Refusal => {
    // The registry refuses some transitions (e.g. from done) or unknown ids; this call is refused all the same.
    setStateQuietly(workflows, step.workflowId, 'tripped', describeTrip(trip), () => {});
    return loopRefusal(step.workflowId, trip);
  };
  const refusalOf = (step: Step, trip: Awaitable<LoopTrip | undefined>): Awaitable<Refusal | undefined> => {
    if (trip === undefined) return undefined;
    if (trip instanceof Promise) return trip.then((t) => t && tripped(step, t));
    return tripped(step, trip);
  };
  return {
    watches: (step) => settingsOf(step) !== undefined,
    check: (step) => {
      const settings = settingsOf(step);
      return settings && refusalOf(step, detector.wouldTrip(step.workflowId, step.exposedName, callArgs(step), settings));
    },
    commit: (step) => {
      const settings = settingsOf(step);
      if (settings) noteRecorded(step.workflowId);
      return settings && refusalOf(step, detector.check(step.workflowId, step.exposedName, callArgs(step), settings));
    },
    rollback: (step) => {
      if (settingsOf(step)) return detector.forgetLast(step.workflowId, step.exposedName, callArgs(step));
    },
  };
}

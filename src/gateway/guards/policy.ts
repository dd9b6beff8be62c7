/**
 * Guard: the caller's policy on tools/call, prompts/get and resources/read; hidden names refuse exactly like unknown ones.
 * Resources are judged on the upstream's own URI and server, whatever spelling (plain or qualified) the client used.
 */
import { PolicyResolver } from '../../identity/policy.js';
import type { GuardCheck, Refusal, Step } from '../types.js';
import { clip } from '../../util/shown.js';

/** Rendered by the adapter as the same error a nonexistent name gets (-32602 / resource not found), so existence never leaks. */
function asUnknown(step: Step): Refusal {
  const what = step.kind === 'tools/call' ? 'tool' : step.kind === 'prompts/get' ? 'prompt' : 'resource';
  return { reason: 'policy_denied', message: `Unknown ${what}: ${clip(step.exposedName)}`, asUnknown: true };
}

type ToolDecision = ReturnType<ReturnType<PolicyResolver['forCaller']>['checkToolCall']>;
const toolDecisions = new WeakMap<Step, { policies: PolicyResolver; d: ToolDecision }>();

/**
 * The caller's policy decision on a tools/call step, worked out once per step: the policy guard, the approval guard
 * and the limits guard's placement all ask it, and a 50-rule policy with argument patterns is not free.
 */
export function toolDecision(policies: PolicyResolver, step: Step): ToolDecision {
  let known = toolDecisions.get(step);
  if (known?.policies !== policies) {
    known = { policies, d: policies.forCaller(step.caller).checkToolCall(step.exposedName, step.args) };
    toolDecisions.set(step, known);
  }
  return known.d;
}

/** Pass the gateway's PolicyResolver (built on the AgentRegistry) so reloads of agents.d apply to open sessions. */
export function createPolicyGuard(policies: PolicyResolver = new PolicyResolver()): GuardCheck {
  return (step) => {
    switch (step.kind) {
      case 'tools/call': {
        const d = toolDecision(policies, step);
        if (d.decision === 'hidden') return asUnknown(step);
        return d.decision === 'deny' ? d.refusal : undefined;
      }
      case 'prompts/get':
        return policies.forCaller(step.caller).canSeePrompt(step.exposedName) ? undefined : asUnknown(step);
      case 'resources/read':
        return policies.forCaller(step.caller).canSeeResource(step.target, step.server) ? undefined : asUnknown(step);
      default:
        return undefined;
    }
  };
}

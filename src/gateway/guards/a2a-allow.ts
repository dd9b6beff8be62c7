/**
 * Guard: `a2a.allow` of the caller's agents.d manifest decides which federated A2A agents it may message, on every
 * path: `/a2a/{name}` and the `{name}__*` MCP tools (docs/decisions/0008-a2a-allow.md). tools.allow still decides
 * whether those tools are visible; a call needs both.
 */
import type { AgentManifest } from '../../config/types.js';
import { compileGlobs, type Matcher } from '../../util/glob.js';
import type { Caller, GuardCheck, Refusal } from '../types.js';

const allowByManifest = new WeakMap<AgentManifest, Matcher>();

/** `a2a.allow` of the caller's agent; no manifest means allow-all only for `local` (SPEC §4), nothing for anyone else. */
export function a2aAllowed(caller: Caller, agentName: string): boolean {
  const agent = caller.agent;
  if (!agent) return caller.via === 'local';
  let m = allowByManifest.get(agent);
  if (!m) {
    m = compileGlobs(agent.a2a.allow);
    allowByManifest.set(agent, m);
  }
  return m(agentName);
}

export function a2aPolicyRefusal(caller: Caller, agentName: string): Refusal {
  return {
    reason: 'policy_denied',
    message: `Agent ${caller.agentId} may not message A2A agent '${agentName}'; an admin can add it to a2a.allow in that agent's manifest in agents.d.`,
    data: { agent: agentName },
  };
}

/** `isA2a(server)`: whether a federated server is an A2A agent (transport: a2a). */
export function createA2aAllowGuard(isA2a: (server: string) => boolean): GuardCheck {
  return (step) => {
    if (step.kind !== 'tools/call' || !step.server || !isA2a(step.server)) return undefined;
    return a2aAllowed(step.caller, step.server) ? undefined : a2aPolicyRefusal(step.caller, step.server);
  };
}

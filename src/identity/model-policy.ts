/**
 * Which models a caller may use: agents.d `models.allow` minus `models.deny` of every agent along its delegation chain,
 * intersected, and narrowed by a delegated token's scope (whose globs may name models). Deny wins; no allow means none.
 */
import type { AgentManifest } from '../config/types.js';
import type { Caller } from '../gateway/types.js';
import { compileGlobs, type Matcher } from '../util/glob.js';
import type { LiveAgents } from './policy.js';
import { LOCAL_AGENT_ID } from './registry.js';

const compiled = new WeakMap<AgentManifest, Matcher>();

function modelsOf(agent: AgentManifest): Matcher {
  let m = compiled.get(agent);
  if (!m) {
    const allow = compileGlobs(agent.models.allow);
    const deny = compileGlobs(agent.models.deny);
    compiled.set(agent, (m = (name) => allow(name) && !deny(name)));
  }
  return m;
}

/** Returns a check of model names for one caller, with the live manifests (a reload of agents.d applies at once). */
export function modelAccess(caller: Caller, agents: LiveAgents): (model: string) => boolean {
  const parts: Matcher[] = [];
  const ids = caller.chain.length > 0 ? caller.chain : [caller.agentId];
  for (const id of ids) {
    const agent = agents.get(id);
    if (agent) parts.push(modelsOf(agent));
    // Only `local` without a local.yaml may use every model; any other agent without a manifest may use none.
    else if (!(id === LOCAL_AGENT_ID && caller.via === 'local')) return () => false;
  }
  if (caller.scope) parts.push(compileGlobs(caller.scope));
  return (model) => parts.every((p) => p(model));
}

/**
 * Effective rights of a delegated caller, recomputed on every call: the live agents.d policy of every agent in its
 * `act` chain, intersected, narrowed by the token's scope. A parent whose policy shrinks takes its children with it.
 */
import type { AgentManifest } from '../config/types.js';
import type { Caller } from '../gateway/types.js';
import { compileGlob } from '../util/glob.js';
import { ALLOW, compilePolicy, HIDDEN, NOTHING, PolicyBase, PolicyResolver, type CompiledPolicy, type LiveAgents, type ToolCallDecision } from './policy.js';
import { LOCAL_AGENT_ID } from './registry.js';

const MAX_CACHED_CHAINS = 4096;


/** Every part must allow; hidden anywhere is hidden (checked first, so a deny never reveals a name), then deny, then approval. */
class IntersectedPolicy extends PolicyBase {
  constructor(private readonly parts: readonly CompiledPolicy[]) {
    super();
  }

  canSeeTool(name: string): boolean {
    return this.parts.every((p) => p.canSeeTool(name));
  }
  canSeePrompt(name: string): boolean {
    return this.parts.every((p) => p.canSeePrompt(name));
  }
  canSeeResource(uri: string, server?: string): boolean {
    return this.parts.every((p) => p.canSeeResource(uri, server));
  }
  override server(server: string): boolean {
    return this.parts.every((p) => p.server?.(server) ?? true);
  }
  checkToolCall(name: string, args: Readonly<Record<string, unknown>> | undefined): ToolCallDecision {
    if (!this.canSeeTool(name)) return HIDDEN;
    let approval: ToolCallDecision | undefined;
    for (const p of this.parts) {
      const d = p.checkToolCall(name, args);
      if (d.decision === 'deny' || d.decision === 'hidden') return d;
      if (d.decision === 'approval') approval ??= d;
    }
    return approval ?? ALLOW;
  }
}

interface CachedChain {
  manifests: ReadonlyArray<AgentManifest | undefined>;
  policy: CompiledPolicy;
}

export interface DelegatedPolicyOptions {
  /** Whether agent `local` without agents.d/local.yaml may use everything (local mode), as the root of a chain. */
  localMode?: () => boolean;
}

/**
 * A PolicyResolver that also knows delegation chains. Pass it wherever the gateway's PolicyResolver goes
 * (the policy and approval guards, and its `access` to the Gateway).
 */
export class DelegatedPolicyResolver extends PolicyResolver {
  readonly #agents: LiveAgents;
  readonly #localMode: () => boolean;
  readonly #cache = new Map<string, CachedChain>();

  constructor(agents: LiveAgents, opts: DelegatedPolicyOptions = {}) {
    super(agents);
    this.#agents = agents;
    this.#localMode = opts.localMode ?? (() => false);
  }

  override forCaller(caller: Caller): CompiledPolicy {
    if (caller.via !== 'delegated' || caller.chain.length <= 1) return super.forCaller(caller);
    const manifests = caller.chain.map((id) => this.#agents.get(id));
    const key = `${caller.chain.join('\u0000')}\u0001${caller.scope?.join('\u0000') ?? ''}`;
    const hit = this.#cache.get(key);
    // Reloads replace manifest objects, so identity tells whether any agent in the chain changed.
    if (hit && hit.manifests.length === manifests.length && hit.manifests.every((m, i) => m === manifests[i])) return hit.policy;
    const policy = this.#compile(caller, manifests);
    if (this.#cache.size >= MAX_CACHED_CHAINS) this.#cache.clear();
    this.#cache.set(key, { manifests, policy });
    return policy;
  }

  #compile(caller: Caller, manifests: ReadonlyArray<AgentManifest | undefined>): CompiledPolicy {
    const last = manifests.length - 1;
    const parts: CompiledPolicy[] = [];
    for (let i = 0; i <= last; i++) {
      const m = manifests[i];
      const scope = i === last ? caller.scope : undefined;
      if (m) parts.push(compilePolicy(m, scope));
      else if (i === 0 && caller.chain[0] === LOCAL_AGENT_ID && this.#localMode()) parts.push(compilePolicy(undefined, scope));
      else return NOTHING;
    }
    return parts.length === 1 ? parts[0]! : new IntersectedPolicy(parts);
  }
}

// ---- scope rules for minting ---------------------------------------------------------------------------------

/** Whether some name matches both globs (`*` any run, `?` one character). */
export function globsOverlap(a: string, b: string): boolean {
  const memo = new Map<number, boolean>();
  const walk = (i: number, j: number): boolean => {
    const k = i * (b.length + 1) + j;
    const seen = memo.get(k);
    if (seen !== undefined) return seen;
    let r: boolean;
    if (i === a.length && j === b.length) r = true;
    else if (i < a.length && a[i] === '*') r = walk(i + 1, j) || (j < b.length && walk(i, j + 1));
    else if (j < b.length && b[j] === '*') r = walk(i, j + 1) || (i < a.length && walk(i + 1, j));
    else if (i < a.length && j < b.length) r = (a[i] === b[j] || a[i] === '?' || b[j] === '?') && walk(i + 1, j + 1);
    else r = false;
    memo.set(k, r);
    return r;
  };
  return walk(0, 0);
}

/** Whether every name `inner` matches is matched by `outer`: `outer` matches `inner` read literally, with no `?` in `inner`. */
export function globContains(outer: string, inner: string): boolean {
  return !inner.includes('?') && compileGlob(outer)(inner);
}

/**
 * The scope a child token gets, or why the request is refused. Rules, for each requested glob:
 * - the parent token has a scope: the glob must lie within one of its globs (`github__*` within `github__*` or `*`);
 * - each agent of the parent's chain (live policy) must allow something it matches and not deny all of it.
 * No requested scope: the child inherits the parent's scope, if any.
 */
export function narrowScope(
  requested: readonly string[] | undefined,
  parentScope: readonly string[] | undefined,
  chainAgents: ReadonlyArray<AgentManifest | undefined>,
): { ok: true; scope?: string[] } | { ok: false; message: string } {
  if (!requested || requested.length === 0) return { ok: true, scope: parentScope ? [...parentScope] : undefined };
  for (const glob of requested) {
    if (parentScope && !parentScope.some((p) => globContains(p, glob))) {
      return { ok: false, message: `scope "${glob}" is not within the parent token's scope (${parentScope.join(' ')}); ask for a narrower scope or none` };
    }
    for (const agent of chainAgents) {
      if (!agent) continue; // allow-all root (local mode)
      const allowed = agent.tools.allow.some((a) => globsOverlap(a, glob));
      const deniedWhole = agent.tools.deny.some((d) => globContains(d, glob));
      if (!allowed || deniedWhole) {
        return { ok: false, message: `scope "${glob}" names no tool agent ${agent.id} may use; ask only for tools the delegating chain can use` };
      }
    }
  }
  return { ok: true, scope: [...requested] };
}

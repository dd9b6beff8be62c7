/**
 * Effective rights of a delegated caller, recomputed on every call: the live agents.d policy of every agent in its
 * `act` chain, intersected, narrowed by the token's scope. A parent whose policy shrinks takes its children with it.
 */
import type { AgentManifest } from '../config/types.js';
import type { Caller } from '../gateway/types.js';
import type { MintedToken } from '../stores/delegation.js';
import { globContains, globsOverlap, MAX_RELATION_GLOB } from '../util/glob.js';
import { ALLOW, compilePolicy, HIDDEN, NOTHING, PolicyBase, PolicyResolver, type CompiledPolicy, type LiveAgents, type ToolCallDecision } from './policy.js';
import { LOCAL_AGENT_ID } from './registry.js';

const MAX_CACHED_CHAINS = 4096;

export { globContains, globsOverlap };

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
  /**
   * The minted token of a jti (DelegationStore.get): the scopes of the tokens a caller's token was minted from are
   * intersected on every call too, so a child never holds more than any ancestor token did.
   */
  tokenOf?: (jti: string) => Pick<MintedToken, 'parentJti' | 'depth' | 'scope'> | undefined;
}

/** Scopes of a token's ancestors by chain position (the holder's depth), and the cache-key part they make. */
interface Lineage {
  scopes: ReadonlyArray<readonly string[] | undefined>;
  key: string;
}

const NO_LINEAGE: Lineage = Object.freeze({ scopes: [], key: '' });
const MAX_HOPS = 32;
/** Globs one token's scope may hold: every one is compared with each parent glob and each chain policy. */
const MAX_SCOPE_GLOBS = 64;

/**
 * A PolicyResolver that also knows delegation chains. Pass it wherever the gateway's PolicyResolver goes
 * (the policy and approval guards, and its `access` to the Gateway).
 */
export class DelegatedPolicyResolver extends PolicyResolver {
  readonly #agents: LiveAgents;
  readonly #localMode: () => boolean;
  readonly #cache = new Map<string, CachedChain>();
  readonly #tokenOf: DelegatedPolicyOptions['tokenOf'];
  readonly #lineages = new Map<string, Lineage>();

  constructor(agents: LiveAgents, opts: DelegatedPolicyOptions = {}) {
    super(agents);
    this.#agents = agents;
    this.#localMode = opts.localMode ?? (() => false);
    this.#tokenOf = opts.tokenOf;
  }

  /** Minted tokens never change, so a token's ancestry is read once. */
  #lineage(jti: string | undefined): Lineage {
    if (!jti || !this.#tokenOf) return NO_LINEAGE;
    let line = this.#lineages.get(jti);
    if (line) return line;
    const scopes: Array<readonly string[] | undefined> = [];
    let at = this.#tokenOf(jti)?.parentJti;
    for (let hops = 0; at && hops < MAX_HOPS; hops++) {
      const t = this.#tokenOf(at);
      if (!t) break;
      scopes[t.depth] = t.scope;
      at = t.parentJti;
    }
    line = { scopes, key: scopes.map((s) => s?.join('\u0000') ?? '').join('\u0002') };
    if (this.#lineages.size >= MAX_CACHED_CHAINS) this.#lineages.clear();
    this.#lineages.set(jti, line);
    return line;
  }

  override forCaller(caller: Caller): CompiledPolicy {
    if (caller.via !== 'delegated' || caller.chain.length <= 1) return super.forCaller(caller);
    const manifests = caller.chain.map((id) => this.#agents.get(id));
    const lineage = this.#lineage(caller.jti);
    const key = `${caller.chain.join('\u0000')}\u0001${caller.scope?.join('\u0000') ?? ''}\u0001${lineage.key}`;
    const hit = this.#cache.get(key);
    // Reloads replace manifest objects, so identity tells whether any agent in the chain changed.
    if (hit && hit.manifests.length === manifests.length && hit.manifests.every((m, i) => m === manifests[i])) return hit.policy;
    const policy = this.#compile(caller, manifests, lineage.scopes);
    if (this.#cache.size >= MAX_CACHED_CHAINS) this.#cache.clear();
    this.#cache.set(key, { manifests, policy });
    return policy;
  }

  #compile(caller: Caller, manifests: ReadonlyArray<AgentManifest | undefined>, scopes: Lineage['scopes']): CompiledPolicy {
    const last = manifests.length - 1;
    const parts: CompiledPolicy[] = [];
    for (let i = 0; i <= last; i++) {
      const m = manifests[i];
      const scope = i === last ? caller.scope : scopes[i];
      if (m) parts.push(compilePolicy(m, scope));
      else if (i === 0 && caller.chain[0] === LOCAL_AGENT_ID && this.#localMode()) parts.push(compilePolicy(undefined, scope));
      else return NOTHING;
    }
    return parts.length === 1 ? parts[0]! : new IntersectedPolicy(parts);
  }
}

// ---- scope rules for minting ---------------------------------------------------------------------------------

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
  if (requested.length > MAX_SCOPE_GLOBS) {
    return { ok: false, message: `scope has ${requested.length} globs, more than the ${MAX_SCOPE_GLOBS} a token may carry; ask for fewer, broader globs` };
  }
  for (const glob of requested) {
    if (glob.length > MAX_RELATION_GLOB) {
      return { ok: false, message: `scope glob "${glob.slice(0, 40)}..." is longer than ${MAX_RELATION_GLOB} characters; ask for a shorter glob` };
    }
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

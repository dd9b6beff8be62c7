/**
 * Per-agent policy compiled once per manifest object: what a caller may see in lists and whether a call is allowed,
 * refused on its arguments, or needs a human's approval. Deny wins over allow; no allow means nothing.
 */
import type { AgentManifest, ToolRule } from '../config/types.js';
import type { Access, AccessResolver } from '../gateway/access.js';
import type { Caller, Refusal } from '../gateway/types.js';
import { compileGlob, compileGlobs, globCoversPrefix, globReachesPrefix, type Matcher } from '../util/glob.js';

export type ToolCallDecision =
  | { decision: 'allow' }
  | { decision: 'hidden' }
  | { decision: 'deny'; refusal: Refusal }
  | { decision: 'approval'; rule: ToolRule };

/** Visibility and call decisions for one agent (and delegated scope). Also the catalog's `Access` list filter. */
export interface CompiledPolicy extends Access {
  /** Tool names are exposed names, `{server}__{tool}`. */
  canSeeTool(exposedName: string): boolean;
  canSeePrompt(exposedName: string): boolean;
  /** `server` is needed when the agent has no `resources` policy, as visibility then derives from the server. */
  canSeeResource(uri: string, server?: string): boolean;
  checkToolCall(exposedName: string, args: Readonly<Record<string, unknown>> | undefined): ToolCallDecision;
}

/** The catalog's `Access` view of a policy's visibility decisions, shared by every CompiledPolicy. */
export abstract class PolicyBase implements CompiledPolicy {
  abstract canSeeTool(exposedName: string): boolean;
  abstract canSeePrompt(exposedName: string): boolean;
  abstract canSeeResource(uri: string, server?: string): boolean;
  abstract checkToolCall(exposedName: string, args: Readonly<Record<string, unknown>> | undefined): ToolCallDecision;
  tool(exposedName: string): boolean {
    return this.canSeeTool(exposedName);
  }
  prompt(exposedName: string): boolean {
    return this.canSeePrompt(exposedName);
  }
  resource(server: string, uri: string): boolean {
    return this.canSeeResource(uri, server);
  }
  /** Whether anything of a server may be visible; an over-estimate is fine (it only opens a session). */
  server(_server: string): boolean {
    return true;
  }
}

/** Whether some `{server}__…` name passes allow globs and no deny glob takes the whole server, within a delegated scope. */
function reachesServer(server: string, allow: readonly string[], deny: readonly string[], scope: readonly string[] | undefined): boolean {
  const prefix = `${server}__`;
  if (scope && !scope.some((g) => globReachesPrefix(g, prefix))) return false;
  return allow.some((g) => globReachesPrefix(g, prefix)) && !deny.some((g) => globCoversPrefix(g, prefix));
}

export const ALLOW: ToolCallDecision = Object.freeze({ decision: 'allow' });
export const HIDDEN: ToolCallDecision = Object.freeze({ decision: 'hidden' });
/** Decision memos per policy are capped so random names from a caller cannot grow memory without bound. */
const MAX_MEMO = 4096;
const MAX_SCOPES_PER_AGENT = 256;

interface CompiledArgRule {
  rule: ToolRule;
  args: Array<{ name: string; glob: string; matches: Matcher }>;
}

interface ToolPlan {
  visible: boolean;
  argRule?: CompiledArgRule;
  approval?: ToolCallDecision;
}

function allowUnlessDenied(allow: readonly string[], deny: readonly string[]): Matcher {
  const allowed = compileGlobs(allow);
  const denied = compileGlobs(deny);
  return (v) => allowed(v) && !denied(v);
}

const ANY: Matcher = () => true;

/** Render a scalar argument for glob matching; objects, arrays, null and missing values never match. */
function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

class AgentPolicy extends PolicyBase {
  readonly #agentId: string;
  readonly #toolVisible: Matcher;
  readonly #promptVisible: Matcher;
  readonly #resourceUriVisible: Matcher | undefined;
  readonly #scopeServer: (server: string | undefined) => boolean;
  readonly #rules: Array<{ rule: ToolRule; matches: Matcher; arg?: CompiledArgRule }>;
  readonly #memo = new Map<string, ToolPlan>();
  readonly #agent: AgentManifest | undefined;
  readonly #scope: readonly string[] | undefined;
  readonly #servers = new Map<string, boolean>();

  constructor(agent: AgentManifest | undefined, scope: readonly string[] | undefined) {
    super();
    this.#agent = agent;
    this.#scope = scope;
    this.#agentId = agent?.id ?? 'local';
    const inScope = scope ? compileGlobs(scope) : ANY;
    const ownTools = agent ? allowUnlessDenied(agent.tools.allow, agent.tools.deny) : ANY;
    this.#toolVisible = scope ? (v) => ownTools(v) && inScope(v) : ownTools;
    // Prompts without their own policy follow the tool policy on their namespaced name: same `{server}__` prefix, same intent.
    const ownPrompts = agent?.prompts ? allowUnlessDenied(agent.prompts.allow, agent.prompts.deny) : undefined;
    this.#promptVisible = ownPrompts ? (scope ? (v) => ownPrompts(v) && inScope(v) : ownPrompts) : this.#toolVisible;
    this.#resourceUriVisible = agent?.resources ? allowUnlessDenied(agent.resources.allow, agent.resources.deny) : undefined;
    this.#scopeServer = scope ? (server) => server !== undefined && inScope(`${server}__*`) : () => true;
    this.#rules = (agent?.tools.rules ?? []).map((rule) => ({
      rule,
      matches: compileGlob(rule.tool),
      arg: rule.args
        ? { rule, args: Object.entries(rule.args).map(([name, glob]) => ({ name, glob, matches: compileGlob(glob) })) }
        : undefined,
    }));
  }

  canSeeTool(exposedName: string): boolean {
    return this.#plan(exposedName).visible;
  }

  canSeePrompt(exposedName: string): boolean {
    return this.#promptVisible(exposedName);
  }

  /**
   * With a `resources` policy, its globs apply to the URI. Without one, a server's resources are visible when the tool
   * policy passes the literal name `{server}__*`, i.e. the agent was granted that server as a whole (`github__*` or `*`),
   * not just some of its tools. A delegated scope narrows resources the same way, by server.
   */
  canSeeResource(uri: string, server?: string): boolean {
    if (!this.#scopeServer(server)) return false;
    if (this.#resourceUriVisible) return this.#resourceUriVisible(uri);
    return server !== undefined && this.#toolVisible(`${server}__*`);
  }

  override server(server: string): boolean {
    let seen = this.#servers.get(server);
    if (seen !== undefined) return seen;
    const a = this.#agent;
    const all = ['*'];
    const tools = reachesServer(server, a ? a.tools.allow : all, a ? a.tools.deny : [], this.#scope);
    const prompts = a?.prompts ? reachesServer(server, a.prompts.allow, a.prompts.deny, this.#scope) : tools;
    const resources = this.#scopeServer(server) && (this.#resourceUriVisible ? (a?.resources?.allow.length ?? 0) > 0 : this.#toolVisible(`${server}__*`));
    seen = tools || prompts || resources;
    if (this.#servers.size >= MAX_MEMO) this.#servers.clear();
    this.#servers.set(server, seen);
    return seen;
  }

  checkToolCall(exposedName: string, args: Readonly<Record<string, unknown>> | undefined): ToolCallDecision {
    const plan = this.#plan(exposedName);
    if (!plan.visible) return HIDDEN;
    if (plan.argRule) {
      const refusal = this.#checkArgs(exposedName, plan.argRule, args);
      if (refusal) return { decision: 'deny', refusal };
    }
    return plan.approval ?? ALLOW;
  }

  /** Which rules apply to a name, worked out once per name rather than per call. */
  #plan(exposedName: string): ToolPlan {
    let plan = this.#memo.get(exposedName);
    if (plan) return plan;
    plan = { visible: this.#toolVisible(exposedName) };
    if (plan.visible) {
      for (const r of this.#rules) {
        if (!r.matches(exposedName)) continue;
        if (r.arg && !plan.argRule) plan.argRule = r.arg;
        if (r.rule.approval === 'human' && !plan.approval) plan.approval = Object.freeze({ decision: 'approval', rule: r.rule });
      }
    }
    if (this.#memo.size >= MAX_MEMO) this.#memo.clear();
    this.#memo.set(exposedName, plan);
    return plan;
  }

  #checkArgs(tool: string, rule: CompiledArgRule, args: Readonly<Record<string, unknown>> | undefined): Refusal | undefined {
    for (const { name, glob, matches } of rule.args) {
      const value = args?.[name];
      const text = scalarText(value);
      if (text !== undefined && matches(text)) continue;
      const problem =
        value === undefined
          ? `argument "${name}" is missing`
          : text === undefined
            ? `argument "${name}" is ${preview(value)}, not a string, number or boolean`
            : `argument "${name}" is ${preview(value)}`;
      return {
        reason: 'policy_denied',
        message: `Policy of agent ${this.#agentId} refuses ${tool}: ${problem}; it must match "${glob}". Call it again with an allowed value.`,
        data: { tool, argument: name },
      };
    }
    return undefined;
  }
}

/** Sees and may call nothing: a caller (or a chain) with an agent that is gone from agents.d. */
export const NOTHING: CompiledPolicy = Object.freeze({
  canSeeTool: () => false,
  canSeePrompt: () => false,
  canSeeResource: () => false,
  checkToolCall: () => HIDDEN,
  tool: () => false,
  prompt: () => false,
  resource: () => false,
  server: () => false,
});

const byAgent = new WeakMap<AgentManifest, Map<string, CompiledPolicy>>();
const allowAllByScope = new Map<string, CompiledPolicy>();
const NO_SCOPE = '\u0000';

/**
 * The compiled policy of an agent, optionally narrowed by a delegated scope (tool globs). `undefined` agent means
 * allow-all (local mode without agents.d/local.yaml). Cached per manifest object, so a reload recompiles once.
 */
export function compilePolicy(agent: AgentManifest | undefined, scope?: readonly string[]): CompiledPolicy {
  let perScope = agent ? byAgent.get(agent) : allowAllByScope;
  if (!perScope) {
    perScope = new Map();
    byAgent.set(agent!, perScope);
  }
  const key = scope ? scope.join('\n') : NO_SCOPE;
  let policy = perScope.get(key);
  if (!policy) {
    policy = new AgentPolicy(agent, scope);
    if (perScope.size >= MAX_SCOPES_PER_AGENT) perScope.clear();
    perScope.set(key, policy);
  }
  return policy;
}

/** Where the current manifest of an agent comes from (the AgentRegistry fits). */
export interface LiveAgents {
  get(agentId: string): AgentManifest | undefined;
}

/**
 * Resolves a caller's policy. Given live agents, it uses the manifest in force now rather than the one the session
 * started with, so a reload of agents.d applies to open sessions too.
 */
export class PolicyResolver {
  constructor(private readonly live?: LiveAgents) {}

  forCaller(caller: Caller): CompiledPolicy {
    const agent = this.live ? this.live.get(caller.agentId) : caller.agent;
    if (agent) return compilePolicy(agent, caller.scope);
    // Only `local` without a local.yaml may use everything; any other caller without a manifest sees nothing.
    return caller.via === 'local' ? compilePolicy(undefined, caller.scope) : NOTHING;
  }

  /** The list filter for the catalog (Gateway `access` dependency). */
  readonly access: AccessResolver = (caller) => this.forCaller(caller);
}

/**
 * Per-agent policy compiled once per manifest object: what a caller may see in lists and whether a call is allowed,
 * refused on its arguments, or needs a human's approval. Deny wins over allow; no allow means nothing.
 */
import type { AgentManifest, ToolRule } from '../config/types.js';
import type { Access, AccessResolver } from '../gateway/access.js';
import type { Caller, Refusal } from '../gateway/types.js';
import { compileGlob, compileGlobs, globContains, globCoversPrefix, globReachesPrefix, MAX_GLOB_INPUT, type Matcher } from '../util/glob.js';

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
/**
 * The tool-plan memo's cap: above any real catalog (100 upstreams x 50 tools is 5,000 names), since a memo cleared at
 * every list of a larger catalog would work out every plan again at every list. Only names of up to
 * MAX_MEMO_NAME_LENGTH characters are kept, so a full memo stays a few megabytes.
 */
const MAX_PLANS = 16_384;
const MAX_MEMO_NAME_LENGTH = 128;
/** Tool and prompt names longer than this are hidden (MCP names are far shorter), which bounds each check. */
export const MAX_NAME_LENGTH = 1024;
const MAX_SCOPES_PER_AGENT = 256;

interface CompiledArgRule {
  rule: ToolRule;
  args: Array<{ name: string; glob: string; matches: Matcher }>;
}

interface ToolPlan {
  visible: boolean;
  /** Every rule with `args` whose tool glob matches: each must hold. */
  argRules: CompiledArgRule[];
  approval?: ToolCallDecision;
}

const UNSEEN: ToolPlan = Object.freeze({ visible: false, argRules: [] });

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

const NON_ASCII = /[^\u0000-\u007f]/;

/** Text a glob compares code point by code point: only the NFC form of non-ASCII text is accepted. */
function isNfc(text: string): boolean {
  return !NON_ASCII.test(text) || text.normalize('NFC') === text;
}

/** Why an argument fails a rule's glob, or undefined when it holds. */
function argProblem(name: string, value: unknown, matches: Matcher): string | undefined {
  if (value === undefined) return `argument "${name}" is missing`;
  const text = scalarText(value);
  if (text === undefined) return `argument "${name}" is ${preview(value)}, not a string, number or boolean`;
  if (text.length > MAX_GLOB_INPUT) return `argument "${name}" is ${text.length} characters long, more than the ${MAX_GLOB_INPUT} a rule checks`;
  if (!isNfc(text)) return `argument "${name}" is not NFC-normalized Unicode text`;
  return matches(text) ? undefined : `argument "${name}" is ${preview(value)}`;
}

function preview(value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? value.slice(0, 80) : value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

class AgentPolicy extends PolicyBase {
  readonly #agentId: string;
  readonly #toolVisible: Matcher;
  readonly #promptVisible: Matcher;
  readonly #resourceUriVisible: Matcher | undefined;
  /** Whether the scope, and the tool policy, grant a server as a whole (`{server}__*`): worked out once per server. */
  readonly #wholeServer: (server: string) => { inScope: boolean; granted: boolean };
  readonly #servers = new Map<string, { inScope: boolean; granted: boolean }>();
  readonly #rules: Array<{ rule: ToolRule; matches: Matcher; arg?: CompiledArgRule }>;
  readonly #memo = new Map<string, ToolPlan>();
  readonly #scoped: boolean;
  readonly #agent: AgentManifest | undefined;
  readonly #scope: readonly string[] | undefined;
  /** Whether the caller may see anything of a server (upstream sessions open only for those). */
  readonly #reach = new Map<string, boolean>();

  constructor(agent: AgentManifest | undefined, scope: readonly string[] | undefined) {
    super();
    this.#agent = agent;
    this.#scope = scope;
    this.#agentId = agent?.id ?? 'local';
    this.#scoped = scope !== undefined;
    const inScope = scope ? compileGlobs(scope) : ANY;
    const ownTools = agent ? allowUnlessDenied(agent.tools.allow, agent.tools.deny) : ANY;
    this.#toolVisible = scope ? (v) => ownTools(v) && inScope(v) : ownTools;
    // Prompts without their own policy follow the tool policy on their namespaced name: same `{server}__` prefix, same intent.
    const ownPrompts = agent?.prompts ? allowUnlessDenied(agent.prompts.allow, agent.prompts.deny) : undefined;
    this.#promptVisible = ownPrompts ? (scope ? (v) => ownPrompts(v) && inScope(v) : ownPrompts) : this.#toolVisible;
    this.#resourceUriVisible = agent?.resources ? allowUnlessDenied(agent.resources.allow, agent.resources.deny) : undefined;
    this.#wholeServer = (server) => {
      const all = `${server}__*`;
      const inScope = !scope || scope.some((g) => globContains(g, all));
      const own = !agent || (agent.tools.allow.some((g) => globContains(g, all)) && !agent.tools.deny.some((g) => globContains(g, all)));
      return { inScope, granted: inScope && own };
    };
    this.#rules = (agent?.tools.rules ?? []).map((rule) => ({
      rule,
      matches: compileGlob(rule.tool),
      arg: rule.args
        ? { rule, args: Object.entries(rule.args).map(([name, glob]) => ({ name, glob, matches: compileGlob(glob.normalize('NFC')) })) }
        : undefined,
    }));
  }

  canSeeTool(exposedName: string): boolean {
    return this.#plan(exposedName).visible;
  }

  canSeePrompt(exposedName: string): boolean {
    return exposedName.length <= MAX_NAME_LENGTH && this.#promptVisible(exposedName);
  }

  /**
   * With a `resources` policy, its globs apply to the URI. Without one, a server's resources are visible when the tool
   * policy grants `{server}__*` as a whole, i.e. an allow glob contains every tool of that server (`github__*` or `*`)
   * and no deny glob does. A delegated scope narrows resources the same way, by server.
   */
  canSeeResource(uri: string, server?: string): boolean {
    if (server === undefined) return !this.#scoped && this.#resourceUriVisible !== undefined && this.#uriVisible(uri);
    let s = this.#servers.get(server);
    if (!s) {
      s = this.#wholeServer(server);
      if (this.#servers.size >= MAX_MEMO) this.#servers.clear();
      this.#servers.set(server, s);
    }
    if (!s.inScope) return false;
    return this.#resourceUriVisible ? this.#uriVisible(uri) : s.granted;
  }

  #uriVisible(uri: string): boolean {
    return uri.length <= MAX_GLOB_INPUT && this.#resourceUriVisible!(uri);
  }

  override server(server: string): boolean {
    let seen = this.#reach.get(server);
    if (seen !== undefined) return seen;
    const a = this.#agent;
    const all = ['*'];
    const tools = reachesServer(server, a ? a.tools.allow : all, a ? a.tools.deny : [], this.#scope);
    const prompts = a?.prompts ? reachesServer(server, a.prompts.allow, a.prompts.deny, this.#scope) : tools;
    const resources = this.#wholeServer(server).inScope && (this.#resourceUriVisible ? (a?.resources?.allow.length ?? 0) > 0 : this.#toolVisible(`${server}__*`));
    seen = tools || prompts || resources;
    if (this.#reach.size >= MAX_MEMO) this.#reach.clear();
    this.#reach.set(server, seen);
    return seen;
  }

  checkToolCall(exposedName: string, args: Readonly<Record<string, unknown>> | undefined): ToolCallDecision {
    const plan = this.#plan(exposedName);
    if (!plan.visible) return HIDDEN;
    for (const rule of plan.argRules) {
      const refusal = this.#checkArgs(exposedName, rule, args);
      if (refusal) return { decision: 'deny', refusal };
    }
    return plan.approval ?? ALLOW;
  }

  /** Which rules apply to a name, worked out once per name rather than per call. */
  #plan(exposedName: string): ToolPlan {
    let plan = this.#memo.get(exposedName);
    if (plan) return plan;
    if (exposedName.length > MAX_NAME_LENGTH) return UNSEEN;
    plan = this.#toolVisible(exposedName) ? this.#rulesFor(exposedName) : UNSEEN;
    if (exposedName.length > MAX_MEMO_NAME_LENGTH) return plan;
    if (this.#memo.size >= MAX_PLANS) this.#memo.clear();
    this.#memo.set(exposedName, plan);
    return plan;
  }

  #rulesFor(exposedName: string): ToolPlan {
    const plan: ToolPlan = { visible: true, argRules: [] };
    for (const r of this.#rules) {
      if (!r.matches(exposedName)) continue;
      if (r.arg) plan.argRules.push(r.arg);
      if (r.rule.approval !== undefined && !plan.approval) plan.approval = Object.freeze({ decision: 'approval', rule: r.rule });
    }
    return plan;
  }

  #checkArgs(tool: string, rule: CompiledArgRule, args: Readonly<Record<string, unknown>> | undefined): Refusal | undefined {
    for (const { name, glob, matches } of rule.args) {
      const value = args && Object.hasOwn(args, name) ? args[name] : undefined;
      const problem = argProblem(name, value, matches);
      if (problem === undefined) continue;
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

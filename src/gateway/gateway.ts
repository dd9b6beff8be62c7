/**
 * The federation core: the registry of upstream pools, the downstream sessions, and the routing of every
 * message between them. Adapters (HTTP, stdio) hand it parsed JSON-RPC messages and a reply channel.
 */
import type { Logger } from 'pino';
import type { GatewayConfig, ServerManifest } from '../config/types.js';
import { NameTable, qualifyUri } from '../catalog/naming.js';
import type { Item } from '../catalog/lists.js';
import { ServerOrder } from '../catalog/routes.js';
import { UpstreamIndex, type IndexKind } from '../catalog/upstream-index.js';
import { compileGlobs } from '../util/glob.js';
import { UpstreamPool } from '../upstream/pool.js';
import type { ClientInit, SessionEvents, UpstreamSession } from '../upstream/session.js';
import { stoppedError } from '../upstream/errors.js';
import type { RpcNotification, RpcRequest, RpcResponse } from '../util/jsonrpc.js';
import { allowAll, type Access, type AccessResolver } from './access.js';
import { GuardChain } from './chain.js';
import type { BreakerBoard } from '../limits/breaker.js';
import type { UpstreamTokenMinter } from '../identity/upstream-token.js';
import { ClientSession, type View } from './client-session.js';
import type { Caller, StepSink, WorkflowControl } from './types.js';
import { memoryA2aContext, type A2aContext } from '../upstream/a2a-context.js';

export const GATEWAY_VERSION = '0.1.0';
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
const SESSION_IDLE_MS = 60 * 60_000;

export interface GatewayDeps {
  config: GatewayConfig;
  log: Logger;
  workflows: WorkflowControl;
  chain?: GuardChain;
  sinks?: StepSink[];
  access?: AccessResolver;
  breakers?: BreakerBoard;
  /** Mints the Authorization header for `identity: jwt` upstreams. */
  mintUpstreamToken?: UpstreamTokenMinter;
  /** List calls and pings are counted, not recorded one by one. */
  countCall?: (agentId: string, method: string) => void;
  /** Task owners and egress rules of the A2A agents (default: owners in memory). */
  a2a?: A2aContext;
}

/** Capabilities the gateway relays for every upstream (SPEC §3). */
const FEDERATED_CAPABILITIES = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { listChanged: true, subscribe: true },
  logging: {},
  completions: {},
};

/** A shared upstream connection serves many clients: it declares what the gateway can relay to any of them. */
const SHARED_CLIENT_CAPABILITIES = { roots: { listChanged: true }, sampling: {}, elicitation: { form: {}, url: {} } };

export class Gateway {
  readonly log: Logger;
  readonly config: GatewayConfig;
  readonly workflows: WorkflowControl;
  chain: GuardChain;
  sinks: StepSink[];
  accessFor: AccessResolver;
  readonly breakers?: BreakerBoard;
  mintUpstreamToken?: UpstreamTokenMinter;
  readonly countCall?: (agentId: string, method: string) => void;
  readonly pools = new Map<string, UpstreamPool>();
  readonly a2a: A2aContext;
  readonly names = new NameTable();
  readonly sessions = new Map<string, ClientSession>();
  private readonly toolFilters = new Map<string, (name: string) => boolean>();
  /** Configuration rank of the servers: decides which of several servers sharing a resource URI keeps it plain. */
  readonly order = new ServerOrder();
  /** Tools, prompts and resources per upstream session, for call-time existence checks and routing. */
  readonly index: UpstreamIndex;
  private readonly reaper: NodeJS.Timeout;

  constructor(deps: GatewayDeps) {
    this.log = deps.log;
    this.config = deps.config;
    this.workflows = deps.workflows;
    this.chain = deps.chain ?? new GuardChain();
    this.sinks = deps.sinks ?? [];
    this.accessFor = deps.access ?? (() => allowAll);
    this.breakers = deps.breakers;
    this.mintUpstreamToken = deps.mintUpstreamToken;
    this.countCall = deps.countCall;
    this.a2a = deps.a2a ?? memoryA2aContext();
    this.index = new UpstreamIndex(() => this.config.listTimeoutMs);
    this.reaper = setInterval(() => this.reapIdle(), 60_000);
    this.reaper.unref();
  }

  // ---- servers -------------------------------------------------------------------------------------------

  /** Apply a new set of manifests: start added ones, restart changed ones, stop removed ones. */
  async applyServers(next: Map<string, ServerManifest>): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    for (const [name, pool] of this.pools) {
      const m = next.get(name);
      if (!m) removed.push(name);
      else if (manifestKey(m) !== manifestKey(pool.manifest)) changed.push(name);
    }
    for (const name of next.keys()) if (!this.pools.has(name)) added.push(name);
    this.order.apply(next.keys());
    for (const name of [...removed, ...changed]) await this.stopServer(name);
    for (const name of [...changed, ...added]) this.startServer(next.get(name)!);
    if (added.length + changed.length + removed.length > 0 && this.sessions.size > 0) {
      for (const cs of this.sessions.values()) {
        if (cs.view.single && !added.includes(cs.view.single) && !changed.includes(cs.view.single) && !removed.includes(cs.view.single)) continue;
        for (const kind of ['tools', 'prompts', 'resources']) cs.push({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
      }
    }
    return { added, changed, removed };
  }

  private startServer(m: ServerManifest): void {
    const pool = new UpstreamPool(m, this.log.child({ server: m.name }), this.a2a);
    this.pools.set(m.name, pool);
    const include = compileGlobs(m.tools.include);
    const exclude = compileGlobs(m.tools.exclude);
    this.toolFilters.set(m.name, (n) => include(n) && !exclude(n));
  }

  private async stopServer(name: string): Promise<void> {
    const pool = this.pools.get(name);
    this.pools.delete(name);
    this.toolFilters.delete(name);
    this.names.forgetServer(name);
    this.breakers?.remove(name);
    await pool?.close();
  }

  toolAllowedByManifest(server: string, name: string): boolean {
    return this.toolFilters.get(server)?.(name) ?? false;
  }

  /** Servers a session can reach. */
  serversInView(cs: ClientSession): string[] {
    if (cs.view.single) return this.pools.has(cs.view.single) ? [cs.view.single] : [];
    return [...this.pools.keys()];
  }

  // ---- sessions ------------------------------------------------------------------------------------------

  negotiateVersion(requested: unknown): string {
    return typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : SUPPORTED_PROTOCOL_VERSIONS[0]!;
  }

  /** initialize: a new session, and the result to send back. */
  async initialize(
    params: Record<string, unknown>,
    caller: Caller,
    view: View,
    opts: { workflowId?: string; traceparent?: string } = {},
  ): Promise<{ session: ClientSession; result: Record<string, unknown> }> {
    const protocolVersion = this.negotiateVersion(params.protocolVersion);
    const init: ClientInit = {
      protocolVersion,
      capabilities: (params.capabilities as Record<string, unknown>) ?? {},
      clientInfo: (params.clientInfo as ClientInit['clientInfo']) ?? { name: 'unknown', version: '0' },
    };
    // A delegated token's workflow wins over any the client names.
    const joined = caller.workflowId ?? opts.workflowId;
    const workflowId = this.workflows.begin({ caller, kind: 'mcp', id: joined, traceparent: opts.traceparent });
    const cs = new ClientSession(init, caller, workflowId, view, opts.traceparent);
    cs.rootOfWorkflow = joined === undefined;
    this.sessions.set(cs.id, cs);
    let capabilities: Record<string, unknown> = FEDERATED_CAPABILITIES;
    let serverInfo: Record<string, unknown> = { name: 'switchyard', version: GATEWAY_VERSION };
    let instructions: string | undefined;
    if (view.single) {
      // One upstream alone: present it as itself, so clients see its own capabilities and instructions.
      const up = await this.upstreamFor(cs, view.single);
      capabilities = up.serverCapabilities;
      serverInfo = up.serverInfo;
      instructions = up.instructions;
    } else {
      // Warm the client's upstream sessions so the first list does not pay every start-up at once.
      for (const name of this.pools.keys()) this.upstreamFor(cs, name).catch(() => {});
    }
    this.log.info({ session: cs.id, agent: caller.agentId, workflowId, client: init.clientInfo.name, protocolVersion, view: view.single ?? 'all' }, 'session started');
    return { session: cs, result: { protocolVersion, capabilities, serverInfo, ...(instructions ? { instructions } : {}) } };
  }

  async closeSession(cs: ClientSession, why = 'closed by client'): Promise<void> {
    if (!this.sessions.delete(cs.id)) return;
    cs.close();
    if (cs.rootOfWorkflow && this.workflows.state(cs.workflowId) === 'active') {
      try {
        this.workflows.setState(cs.workflowId, 'done', why);
      } catch (err) {
        this.log.warn({ workflowId: cs.workflowId, err: (err as Error).message }, 'could not mark workflow done');
      }
    }
    await Promise.all([...this.pools.values()].map((p) => p.release(cs.id)));
    this.log.info({ session: cs.id, agent: cs.caller.agentId, why }, 'session ended');
  }

  private reapIdle(): void {
    const cutoff = Date.now() - SESSION_IDLE_MS;
    for (const cs of this.sessions.values()) if (cs.lastSeen < cutoff && cs.inFlight.size === 0) void this.closeSession(cs, 'idle');
  }

  access(cs: ClientSession): Access {
    return this.accessFor(cs.caller);
  }

  // ---- upstream sessions ---------------------------------------------------------------------------------

  /** The client's session with one upstream (connecting it on first use). */
  upstreamFor(cs: ClientSession, server: string): Promise<UpstreamSession> {
    const pool = this.pools.get(server);
    if (!pool) return Promise.reject(stoppedError(server));
    const live = pool.peek(cs.id);
    if (live) return Promise.resolve(live);
    const init: ClientInit = pool.shared
      ? { protocolVersion: cs.protocolVersion, capabilities: SHARED_CLIENT_CAPABILITIES, clientInfo: { name: 'switchyard', version: GATEWAY_VERSION } }
      : cs.init;
    return pool.acquire(cs.id, init, pool.shared ? this.sharedEvents(server) : this.clientEvents(cs, server));
  }

  /** Tool definitions of one upstream session, listed once and kept until the upstream says they changed. */
  toolsOf(session: UpstreamSession): Promise<Map<string, Item>> {
    return this.index.toolsOf(session);
  }

  private clientEvents(cs: ClientSession, server: string): SessionEvents {
    return {
      onNotification: (msg) => this.relayNotification(cs, server, msg),
      onServerRequest: (msg) => this.askOnSessionStream(cs, msg),
    };
  }

  private sharedEvents(server: string): SessionEvents {
    return {
      onNotification: (msg) => {
        const changed = LIST_CHANGED[msg.method];
        const live = changed && this.pools.get(server)?.peek('');
        if (live) this.index.invalidate(live, changed); // also when no client is connected to hear it
        for (const cs of this.sessions.values()) if (!cs.view.single || cs.view.single === server) this.relayNotification(cs, server, msg);
      },
      // A shared upstream asking outside any call has no single client to ask.
      onServerRequest: (msg) => Promise.resolve({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `${msg.method} is not available outside a call on a shared upstream` } }),
    };
  }

  private relayNotification(cs: ClientSession, server: string, msg: RpcNotification): void {
    const m = msg.method;
    const changed = LIST_CHANGED[m];
    if (changed) {
      const live = this.pools.get(server)?.peek(cs.id);
      if (live) this.index.invalidate(live, changed);
    }
    if (m === 'notifications/resources/updated') {
      const uri = msg.params?.uri;
      if (typeof uri !== 'string') return;
      // Delivered in the form the client subscribed with, and only for the server that subscription was routed to.
      const qualified = qualifyUri(server, uri);
      const exposed = cs.subscriptions.get(uri) === server ? uri : cs.subscriptions.get(qualified) === server ? qualified : undefined;
      if (exposed === undefined) return;
      if (exposed !== uri) msg = { ...msg, params: { ...msg.params, uri: exposed } };
    }
    cs.push(msg);
  }

  /** A server-to-client request outside any call goes on the session's own stream. */
  askOnSessionStream(cs: ClientSession, msg: RpcRequest): Promise<RpcResponse> {
    return cs.ask({ method: msg.method, params: msg.params }, (req) => cs.push(req));
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    for (const pool of this.pools.values()) pool.stopping();
    for (const cs of [...this.sessions.values()]) await this.closeSession(cs, 'gateway stopping');
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}

const LIST_CHANGED: Record<string, IndexKind | undefined> = {
  'notifications/tools/list_changed': 'tools',
  'notifications/prompts/list_changed': 'prompts',
  'notifications/resources/list_changed': 'resources',
};

function manifestKey(m: ServerManifest): string {
  const { source: _source, ...rest } = m;
  return JSON.stringify(rest);
}

/**
 * The federation core: the registry of upstream pools, the downstream sessions, and the routing of every
 * message between them. Adapters (HTTP, stdio) hand it parsed JSON-RPC messages and a reply channel.
 */
import type { Logger } from 'pino';
import type { GatewayConfig, ServerManifest } from '../config/types.js';
import { Catalog } from '../catalog/catalog.js';
import type { Item } from '../catalog/lists.js';
import type { NameTable } from '../catalog/naming.js';
import type { UpstreamIndex } from '../catalog/upstream-index.js';
import { serversInView, type ViewSource } from '../catalog/view.js';
import { ClientView } from './client-view.js';
import { UpstreamPool } from '../upstream/pool.js';
import type { ClientInit, UpstreamSession } from '../upstream/session.js';
import { stoppedError } from '../upstream/errors.js';
import type { RpcNotification, RpcRequest, RpcResponse } from '../util/jsonrpc.js';
import { allowAll, reaches, type Access, type AccessResolver } from './access.js';
import { hasListed, LIST_KINDS, markListed, type ListKind } from './notify.js';
import { admitsLog, LogLevels } from './log-levels.js';
import { clientEvents, sharedEvents } from './upstream-events.js';
import { GuardChain } from './chain.js';
import type { BreakerBoard } from '../limits/breaker.js';
import type { UpstreamTokenMinter } from '../identity/upstream-token.js';
import { ClientSession, type View } from './client-session.js';
import type { Caller, StepSink, WorkflowControl } from './types.js';
import { memoryA2aContext, type A2aContext } from '../upstream/a2a-context.js';
import { DEFAULT_SESSIONS_MAX, SessionAdmission } from './admission.js';
import type { ApprovalQueue } from './approval-queue.js';

export const GATEWAY_VERSION = '0.1.0';
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
const DEFAULT_SESSION_IDLE_SECONDS = 900;
/** A session without a GET stream and silent this long may be ended to make room at a session cap. */
const ABANDONED_AFTER_MS = 60_000;

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
  /** Where held calls wait for a human when the client cannot be asked (SPEC §10). */
  approvals?: ApprovalQueue;
}

/** Capabilities the gateway relays for every upstream (SPEC §3). */
export const FEDERATED_CAPABILITIES = {
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
  readonly approvals?: ApprovalQueue;
  /** Names, routes, filters and lists: the gateway asks the catalog. */
  readonly catalog: Catalog;
  readonly sessions = new Map<string, ClientSession>();
  /** Told of list changes that concern every client of some servers (stateless subscriptions/listen streams). */
  readonly listChanges = new Set<(servers: readonly string[], kind: ListKind) => void>();
  private readonly admission: SessionAdmission;
  private readonly sessionIdleMs: number;
  private readonly reaper: NodeJS.Timeout;
  private readonly levels = new LogLevels(this);

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
    this.approvals = deps.approvals;
    this.catalog = new Catalog({ log: this.log, listTimeoutMs: () => this.config.listTimeoutMs, onIndexed: (session, kind) => markListed(session, kind) });
    this.admission = new SessionAdmission(deps.config.sessions?.max ?? DEFAULT_SESSIONS_MAX);
    this.sessionIdleMs = (deps.config.sessions?.idleSeconds ?? DEFAULT_SESSION_IDLE_SECONDS) * 1000;
    this.reaper = setInterval(() => this.reapIdle(), Math.min(60_000, Math.max(250, Math.floor(this.sessionIdleMs / 4))));
    this.reaper.unref();
  }

  // ---- servers -------------------------------------------------------------------------------------------

  /** Apply a new set of manifests: start added ones, restart changed ones, stop removed ones. */
  async applyServers(next: Map<string, ServerManifest>): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    const restart: string[] = [];
    const refiltered: string[] = [];
    for (const [name, pool] of this.pools) {
      const m = next.get(name);
      if (!m) removed.push(name);
      else if (manifestKey(m) !== manifestKey(pool.manifest)) {
        changed.push(name);
        if (connectionKey(m) !== connectionKey(pool.manifest)) restart.push(name);
        else {
          // Same connection: keep the running sessions and take the new limits, filters and flags in place.
          if (JSON.stringify(m.tools) !== JSON.stringify(pool.manifest.tools)) refiltered.push(name);
          const nowRequired = m.required && !pool.manifest.required;
          Object.assign(pool.manifest, m);
          this.configureServer(pool.manifest);
          if (nowRequired) pool.monitor();
        }
      }
    }
    for (const name of next.keys()) if (!this.pools.has(name)) added.push(name);
    this.catalog.applyOrder(next.keys());
    for (const name of [...removed, ...restart]) await this.stopServer(name);
    for (const name of [...restart, ...added]) this.startServer(next.get(name)!);
    this.announce([...added, ...restart, ...removed], LIST_KINDS);
    this.announce(refiltered, ['tools']);
    return { added, changed, removed };
  }

  /** Tell the clients for whom these servers are in reach that lists they were answered may have changed (a client that never listed a kind has nothing stale). */
  announce(servers: readonly string[], kinds: readonly ListKind[]): void {
    if (servers.length === 0) return;
    for (const listener of this.listChanges) for (const kind of kinds) listener(servers, kind);
    for (const cs of this.sessions.values()) {
      if (cs.view.single ? !servers.includes(cs.view.single) : !servers.some((s) => reaches(this.access(cs), s))) continue;
      for (const kind of kinds) if (hasListed(cs, kind)) cs.push({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
    }
  }

  /** A list went out without a server still starting for this client: once it is ready, that list has changed. */
  announceWhenReady(cs: ClientSession, server: string, kind: ListKind): void {
    const bit = `${server}\u0000${kind}`;
    const awaiting = (cs.awaiting ??= new Set());
    if (awaiting.has(bit)) return;
    awaiting.add(bit);
    this.upstreamFor(cs, server).then(
      () => {
        awaiting.delete(bit);
        if (this.sessions.has(cs.id)) cs.push({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
      },
      () => awaiting.delete(bit),
    );
  }

  private startServer(m: ServerManifest): void {
    const pool = new UpstreamPool(m, this.log.child({ server: m.name }), this.a2a);
    this.pools.set(m.name, pool);
    this.configureServer(m);
    // A server that comes back after being down reappears in lists: clients that listed hear of it.
    let wasDown = false;
    pool.onHealth((h) => {
      if (h.up && wasDown && this.pools.get(m.name) === pool) this.announce([m.name], LIST_KINDS);
      wasDown = !h.up;
    });
    pool.monitor();
  }

  private configureServer(m: ServerManifest): void {
    this.catalog.configure(m);
    this.breakers?.remove(m.name);
    this.breakers?.get(m.name, { failureThreshold: m.breaker?.failures, cooldownMs: m.breaker ? m.breaker.cooldownSeconds * 1000 : undefined });
  }

  private async stopServer(name: string): Promise<void> {
    const pool = this.pools.get(name);
    this.pools.delete(name);
    this.catalog.forget(name);
    this.breakers?.remove(name);
    await pool?.close();
  }

  get names(): NameTable {
    return this.catalog.names;
  }

  get index(): UpstreamIndex {
    return this.catalog.index;
  }

  toolAllowedByManifest(server: string, name: string): boolean {
    return this.catalog.toolAllowed(server, name);
  }

  /** Servers a session can reach: in its view, and with something its policy may show. */
  serversInView(cs: ClientSession): string[] {
    return serversInView(this.pools.keys(), this.access(cs), cs.view.single);
  }

  /** This client's view of the catalog: the servers it reaches and its sessions with them. */
  viewOf(cs: ClientSession): ViewSource {
    return new ClientView(this, cs);
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
    this.admission.admit(caller, view, this.accessFor(caller), (agentId) => this.reclaimAbandoned(agentId));
    // A delegated token's workflow wins over any the client names.
    const joined = caller.workflowId ?? opts.workflowId;
    let workflowId: string;
    try {
      workflowId = this.workflows.begin({ caller, kind: 'mcp', id: joined, traceparent: opts.traceparent });
    } catch (err) {
      this.admission.release(caller.agentId);
      throw err;
    }
    const cs = new ClientSession(init, caller, workflowId, view, opts.traceparent);
    cs.rootOfWorkflow = joined === undefined;
    this.sessions.set(cs.id, cs);
    let capabilities: Record<string, unknown> = FEDERATED_CAPABILITIES;
    let serverInfo: Record<string, unknown> = { name: 'switchyard', version: GATEWAY_VERSION };
    let instructions: string | undefined;
    if (view.single) {
      // One upstream alone: present it as itself, so clients see its own capabilities and instructions.
      let up: UpstreamSession;
      try {
        up = await this.upstreamFor(cs, view.single);
      } catch (err) {
        await this.closeSession(cs, 'upstream unavailable at initialize');
        throw err;
      }
      capabilities = up.serverCapabilities;
      serverInfo = up.serverInfo;
      instructions = up.instructions;
    }
    // Other upstream sessions open when the client first lists or calls: an agent allowed nothing starts nothing.
    this.log.info({ session: cs.id, agent: caller.agentId, workflowId, client: init.clientInfo.name, protocolVersion, view: view.single ?? 'all' }, 'session started');
    return { session: cs, result: { protocolVersion, capabilities, serverInfo, ...(instructions ? { instructions } : {}) } };
  }

  async closeSession(cs: ClientSession, why = 'closed by client'): Promise<void> {
    if (!this.sessions.delete(cs.id)) return;
    this.admission.release(cs.caller.agentId);
    cs.close();
    if (cs.rootOfWorkflow && this.workflows.state(cs.workflowId) === 'active') {
      try {
        const marked = this.workflows.setState(cs.workflowId, 'done', why);
        if (marked instanceof Promise) await marked;
      } catch (err) {
        this.log.warn({ workflowId: cs.workflowId, err: (err as Error).message }, 'could not mark workflow done');
      }
    }
    await Promise.all([...this.pools.values()].map((p) => p.release(cs.id)));
    if (cs.logLevel !== undefined) for (const [name, pool] of this.pools) if (pool.shared) void this.levels.applyShared(name);
    this.log.info({ session: cs.id, agent: cs.caller.agentId, why }, 'session ended');
  }

  /**
   * At a session cap, end the longest-silent session that looks abandoned (no GET stream, nothing in flight, silent
   * for a minute): clients that never send DELETE must not lock their agent out until idle expiry.
   */
  private reclaimAbandoned(agentId?: string): boolean {
    const cutoff = Date.now() - ABANDONED_AFTER_MS;
    let victim: ClientSession | undefined;
    for (const cs of this.sessions.values()) {
      if (agentId !== undefined && cs.caller.agentId !== agentId) continue;
      if (cs.hasStream || cs.inFlight.size > 0 || cs.lastSeen >= cutoff) continue;
      if (!victim || cs.lastSeen < victim.lastSeen) victim = cs;
    }
    if (!victim) return false;
    void this.closeSession(victim, 'reclaimed at the session limit');
    return true;
  }

  /** Sessions silent for sessions.idleSeconds, with no call in flight and no open GET stream, are closed. */
  private reapIdle(): void {
    const cutoff = Date.now() - this.sessionIdleMs;
    for (const cs of this.sessions.values()) if (cs.lastSeen < cutoff && cs.inFlight.size === 0 && !cs.hasStream) void this.closeSession(cs, 'idle');
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
    return pool.acquire(cs.id, init, pool.shared ? sharedEvents(this, server) : clientEvents(this, cs, server)).then(async (s) => {
      // A session opened after the client chose a log level starts at that level.
      if (pool.shared) await this.levels.applyShared(server);
      else if (cs.logLevel !== undefined) await this.levels.applyTo(s, cs.logLevel);
      return s;
    });
  }

  /** logging/setLevel from a client: its own upstream sessions take it; a shared one goes to the most verbose level asked. */
  setLogLevel(cs: ClientSession, level: string): Promise<void> {
    return this.levels.set(cs, level);
  }

  /** Whether a log message from a call on a shared upstream is at a level this client asked for. */
  admitsLog(cs: ClientSession, upstream: UpstreamSession, msg: RpcNotification): boolean {
    return admitsLog(cs, upstream, msg);
  }

  /** Tool definitions of one upstream session, listed once and kept until the upstream says they changed. */
  toolsOf(session: UpstreamSession): Promise<Map<string, Item>> {
    return this.index.toolsOf(session);
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

function manifestKey(m: ServerManifest): string {
  const { source: _source, ...rest } = m;
  return JSON.stringify(rest);
}

/** What a running upstream session depends on: a change here restarts the server, anything else applies in place. */
function connectionKey(m: ServerManifest): string {
  return JSON.stringify([m.transport, m.command, m.args, m.env, m.cwd, m.url, m.headers, m.session, m.identity, m.protocol, m.connectTimeoutMs]);
}

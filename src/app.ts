/** Composes a running gateway from its rooms: configuration and watchers, identity, audit, limits, guards, the federation core and the HTTP face. */
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import type express from 'express';
import type { Logger } from 'pino';
import { ConfigWatcher, loadGatewayConfig, PACKAGE_GATEWAY_FILE, type GatewayOverrides } from './config/index.js';
import type { GatewayConfig } from './config/types.js';
import { Gateway } from './gateway/gateway.js';
import type { AuditRuntime } from './audit/index.js';
import { createGatewayGuards } from './gateway/guards/index.js';
import { createLimitsGuard } from './gateway/guards/limits.js';
import { openModelRuntime, type ModelRuntime } from './downstream/model-route/index.js';
import { metricsSink, stepLogSink } from './gateway/sinks.js';
import { endSessionsOnKill } from './gateway/workflow-kill.js';
import { BreakerBoard } from './limits/breaker.js';
import { LimitCounters } from './limits/counters.js';
import { Metrics } from './telemetry/metrics.js';
import { ApprovalQueue } from './gateway/approval-queue.js';
import { openStores, type GatewayStores } from './stores/open.js';
import { SharedStateWatch } from './gateway/shared-state.js';
import { LiveFeed } from './downstream/admin-live.js';
import { createHttpFront } from './downstream/http-app.js';
import { openDelegation, type DelegationRuntime } from './identity/delegation-runtime.js';
import { Authenticator } from './identity/authenticate.js';
import { JwtVerifier } from './identity/jwt.js';
import { PolicyResolver } from './identity/policy.js';
import { AgentRegistry } from './identity/registry.js';
import { createUpstreamTokenMinter } from './identity/upstream-token.js';
import { createLogger } from './telemetry/logger.js';
import { A2aEgress } from './upstream/a2a-egress.js';
import { isLoopbackHost } from './util/net.js';
import { advertiseUrlFor } from './config/advertise.js';
import { openSessionSharing } from './downstream/shared-sessions.js';

export interface StartOptions {
  configPath?: string;
  overrides?: GatewayOverrides;
  logger?: Logger;
}

export interface RunningGateway {
  url: string;
  config: GatewayConfig;
  gateway: Gateway;
  /** The HTTP routes (the admin API's route list is checked against its OpenAPI document). */
  app: express.Express;
  close(): Promise<ShutdownReport>;
}

/** What shutdown could not finish: audit records that were not written (a non-zero exit). */
export interface ShutdownReport {
  auditUnwritten: number;
}

export class StartupError extends Error {}

export interface Core {
  config: GatewayConfig;
  gateway: Gateway;
  watcher: ConfigWatcher;
  log: Logger;
  /** True when no issuer and no API key is configured: loopback callers only, as agent `local`. */
  readonly localMode: boolean;
  authenticator: Authenticator;
  verifier: JwtVerifier;
  registry: AgentRegistry;
  policies: PolicyResolver;
  delegation: DelegationRuntime;
  audit: AuditRuntime;
  metrics: Metrics;
  counters: LimitCounters;
  approvals: ApprovalQueue;
  /** Finished steps for the console's live views. */
  live: LiveFeed;
  models: ModelRuntime;
  /** The stores chosen from gateway.yaml (embedded, or Redis and PostgreSQL for replicas). */
  stores: GatewayStores;
  /** Whether shared state answers; /readyz and the first guard read it. */
  shared: SharedStateWatch;
  close(): Promise<ShutdownReport>;
}

/** Configuration, upstream pools and the guard chain: everything but the listening port (shared by serve and stdio). */
export async function createCore(opts: StartOptions): Promise<Core> {
  const log = opts.logger ?? createLogger();
  const loaded = loadGatewayConfig(opts.configPath, opts.overrides ?? {}, { fallbackFile: PACKAGE_GATEWAY_FILE });
  if (loaded.problems.length > 0) {
    throw new StartupError(`gateway configuration has problems:\n${loaded.problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n')}`);
  }
  const config = loaded.config;
  const watcher = new ConfigWatcher({ serversDir: config.serversDir, agentsDir: config.agentsDir, logger: log, workspaceDir: process.cwd(), dataDir: config.dataDir });
  log.info(
    { config: loaded.file ?? null, serversDir: config.serversDir, agentsDir: config.agentsDir, dataDir: config.dataDir, servers: watcher.servers.size, agents: watcher.agents.size },
    `configuration: ${loaded.file ?? 'defaults (no gateway.yaml)'}; ${watcher.servers.size} server(s) from ${config.serversDir}, ${watcher.agents.size} agent(s) from ${config.agentsDir}; data in ${config.dataDir}`,
  );
  const verifier = new JwtVerifier(config.auth.issuers);
  const registry = new AgentRegistry(new Map(watcher.agents));
  const authenticator = new Authenticator({ verifier, registry });
  watcher.on('agents', (change) => {
    for (const p of registry.update(change.agents)) log.error(p, 'agent credential conflict');
  });

  mkdirSync(config.dataDir, { recursive: true });
  let stores: GatewayStores;
  try {
    stores = await openStores({ config, log });
  } catch (err) {
    // A shared store's error names the server and what to do; an embedded one's the data dir.
    if (config.store.postgres !== undefined || config.state.redis !== undefined) throw new StartupError((err as Error).message);
    throw new StartupError(`cannot open the audit trail in ${config.dataDir}: ${(err as Error).message}`);
  }
  const audit = stores.audit;
  const shared = new SharedStateWatch({ health: () => stores.health(), failMode: config.state.failMode, log });
  if (stores.backends.state !== 'embedded') log.info({ replica: stores.replicaId, ...stores.backends, failMode: config.state.failMode }, `replica ${stores.replicaId}: state in ${stores.backends.state}, durable store in ${stores.backends.store}, state.failMode ${config.state.failMode}`);
  const delegation = await openDelegation({
    config,
    stores: { tokens: stores.tokens, slices: stores.slices, keys: stores.keys, liveChildren: stores.liveChildren },
    log,
    agents: registry,
    localMode: () => authenticator.localMode,
  });
  authenticator.setRevocationCheck(delegation.isRevoked);
  authenticator.setTokenLoader(delegation.ensureToken);
  if (config.publicUrl) delegation.trust(verifier, config.publicUrl);
  const policies = delegation.policies;
  const workflows = audit.workflows;
  const metrics = new Metrics();
  metrics.trackAuditQueue(() => audit.store.queueDepth);
  metrics.trackAuditWriter(() => audit.store.getStats());
  // A shared registry counts in PostgreSQL: a scrape shows the count its previous scrape asked for.
  let activeSeen = 0;
  metrics.trackActiveWorkflows(() => {
    const counts = workflows.countByState();
    if (!(counts instanceof Promise)) return counts.active ?? 0;
    counts.then((c) => void (activeSeen = c.active ?? 0), () => {});
    return activeSeen;
  });
  const counters = new LimitCounters({ store: stores.counters });
  const breakers = new BreakerBoard({ onStateChange: (server, state) => log.warn({ server, breaker: state }, `circuit breaker for '${server}' is ${state}`) });
  const limits = createLimitsGuard({ counters, teamsConfig: () => config.teams, agentById: (id) => registry.get(id) });
  const chain = createGatewayGuards({
    limits,
    workflows,
    policies,
    isA2aServer: (server) => gateway.pools.get(server)?.manifest.transport === 'a2a',
    delegation: delegation.guard,
    counters,
    loopHistory: stores.loopHistory,
    // A gateway on its data dir has nothing shared to lose: every call would ask an empty health list for nothing.
    sharedState: stores.backends.state === 'embedded' && stores.backends.store === 'sqlite' ? undefined : shared.guard,
    teams: () => config.teams,
    agentById: (id) => registry.get(id),
    onError: (err, phase) => log.error({ err: String(err), phase }, `a guard's ${phase} failed after the call was decided; its store may be out of step until it recovers`),
  });
  const live = new LiveFeed();
  const sinks = [audit.sink, metricsSink(metrics), stepLogSink(log), live];
  const approvals = new ApprovalQueue({
    store: stores.approvals,
    bus: stores.bus,
    log,
    timeoutMs: config.approval.timeoutSeconds * 1000,
    webhook: config.approval.webhook,
    nextStep: (id) => workflows.nextStep(id),
    record: (step, outcome) => {
      for (const sink of sinks) void Promise.resolve(sink.record(step, outcome)).catch((err: Error) => log.error({ err: err.message }, 'approval decision not recorded'));
    },
  });
  const gateway = new Gateway({
    config,
    log,
    workflows,
    chain,
    breakers,
    access: policies.access,
    mintUpstreamToken: createUpstreamTokenMinter((claims) => delegation.keys.sign(claims), () => config.publicUrl ?? `http://${config.host}:${config.port}`),
    sinks,
    approvals,
    countCall: (agent, method) => audit.store.countListCall(agent, method),
    a2a: { owners: stores.taskOwners, egress: new A2aEgress() },
  });
  endSessionsOnKill(gateway, workflows);
  const models = await openModelRuntime({ config, configFile: loaded.file, log, workflows, lookup: workflows, chain, sinks: gateway.sinks, limits, agents: registry });
  await gateway.applyServers(new Map(watcher.servers));
  for (const [name, pool] of gateway.pools) pool.onHealth((h) => metrics.setUpstreamUp(name, h.up));
  watcher.on('servers', (change) => {
    void gateway.applyServers(change.servers);
  });
  return {
    config,
    gateway,
    watcher,
    log,
    get localMode() {
      return authenticator.localMode;
    },
    authenticator,
    verifier,
    registry,
    policies,
    delegation,
    audit,
    metrics,
    counters,
    approvals,
    live,
    models,
    stores,
    shared,
    close: async () => {
      models.close();
      watcher.close();
      approvals.close();
      await gateway.close();
      return { auditUnwritten: await stores.close() };
    },
  };
}

export async function startGateway(opts: StartOptions = {}): Promise<RunningGateway> {
  const core = await createCore(opts);
  const { config, gateway, log } = core;
  const loopbackListen = isLoopbackHost(config.host);
  if (core.localMode && !loopbackListen) {
    await core.close();
    throw new StartupError(`refusing to listen on ${config.host} without authentication: configure auth.issuers in gateway.yaml or API keys in agents.d, or listen on 127.0.0.1.`);
  }
  if (core.localMode) log.warn('no issuer and no API key configured: local mode, only loopback callers are accepted, as agent "local"');

  const sharing = core.stores.sessions ? await openSessionSharing(config, log, core.stores.sessions) : undefined;
  const { app, server } = createHttpFront({ ...core, localMode: () => core.localMode, remoteSessions: sharing });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    await sharing?.close();
    await core.close();
    throw listenError(err, config.port);
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  try {
    sharing?.start(advertiseUrlFor(config, addr.port));
  } catch (err) {
    server.close();
    await sharing?.close();
    await core.close();
    throw new StartupError((err as Error).message);
  }
  gateway.a2a.egress.setListener({ host: config.host, port: addr.port, publicUrl: config.publicUrl });
  config.publicUrl ??= url;
  core.delegation.trust(core.verifier, config.publicUrl);
  log.info({ url, mcp: `${url}/mcp`, servers: [...gateway.pools.keys()] }, 'listening');

  let closing: Promise<ShutdownReport> | undefined;
  return {
    url,
    config,
    gateway,
    app,
    close: () =>
      (closing ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        // Withdrawn first, while the shared Redis client is still open: other replicas then answer its sessions 404.
        await sharing?.close();
        return core.close();
      })()),
  };
}

/** A port that cannot be bound is an operator's problem: say which and what to do. */
function listenError(err: unknown, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new StartupError(`port ${port} is in use: pass --port N or stop the other process`);
  if (code === 'EACCES') return new StartupError(`port ${port} needs privileges this process lacks: pass --port N above 1023`);
  if (code === 'EADDRNOTAVAIL') return new StartupError(`the listen address is not on this machine: pass --host with a local address, e.g. 127.0.0.1`);
  return err;
}

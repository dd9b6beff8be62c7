/** Assembles a running gateway from configuration: upstream pools, watchers, the guard chain and the HTTP port. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Logger } from 'pino';
import { ConfigWatcher, loadGatewayConfig, PACKAGE_GATEWAY_FILE, type GatewayOverrides } from './config/index.js';
import type { GatewayConfig } from './config/types.js';
import { Gateway } from './gateway/gateway.js';
import { mkdirSync } from 'node:fs';
import { openAudit, type AuditRuntime } from './audit/index.js';
import { GuardChain } from './gateway/chain.js';
import { createLimitsGuard } from './gateway/guards/limits.js';
import { createLoopGuard } from './gateway/guards/loop.js';
import { createWorkflowStateGuard } from './gateway/guards/workflow-state.js';
import { metricsSink, stepLogSink } from './gateway/sinks.js';
import { BreakerBoard } from './limits/breaker.js';
import { LimitCounters } from './limits/counters.js';
import { LoopDetector } from './limits/loop.js';
import { Metrics } from './telemetry/metrics.js';
import { createAuditAdminRouter } from './downstream/admin-audit.js';
import { createInventoryRouter } from './downstream/admin-inventory.js';
import { createHttpAuthenticate, protectedResourceMetadata, resourcePathOfMetadataRequest } from './downstream/auth-http.js';
import { hasAuthorizationServer, NO_AUTHORIZATION_SERVER } from './downstream/auth-http.js';
import { mountA2a } from './downstream/a2a-server.js';
import { mountDelegation } from './downstream/oauth-token.js';
import { openDelegation, type DelegationRuntime } from './identity/delegation-runtime.js';
import { createApprovalGuard } from './gateway/guards/approval.js';
import { createPolicyGuard } from './gateway/guards/policy.js';
import { Authenticator, isLoopbackHost } from './identity/authenticate.js';
import { JwtVerifier } from './identity/jwt.js';
import { PolicyResolver } from './identity/policy.js';
import { AgentRegistry } from './identity/registry.js';
import { createUpstreamTokenMinter } from './identity/upstream-token.js';
import type { Caller } from './gateway/types.js';
import { createHostCheck } from './downstream/host-check.js';
import { McpHttpHandler } from './downstream/mcp-http.js';
import { createLogger } from './telemetry/logger.js';
import { A2aEgress } from './upstream/a2a-egress.js';
import { SqliteTaskOwners } from './upstream/a2a-owners.js';
import { createA2aAllowGuard } from './gateway/guards/a2a-allow.js';
import { adminGate } from './downstream/admin-gate.js';

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

const SERVER_PATH = /^\/servers\/([a-z0-9][a-z0-9-]{0,31})\/mcp\/?$/;

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
  let audit: AuditRuntime;
  try {
    audit = openAudit({ dataDir: config.dataDir, audit: config.audit, logger: log });
  } catch (err) {
    throw new StartupError(`cannot open the audit trail in ${config.dataDir}: ${(err as Error).message}`);
  }
  const delegation = await openDelegation({ config, db: audit.db, agents: registry, localMode: () => authenticator.localMode });
  authenticator.setRevocationCheck(delegation.isRevoked);
  if (config.publicUrl) delegation.trust(verifier, config.publicUrl);
  const policies = delegation.policies;
  const workflows = audit.workflows;
  const metrics = new Metrics();
  metrics.trackAuditQueue(() => audit.store.queueDepth);
  metrics.trackAuditWriter(() => audit.store.getStats());
  metrics.trackActiveWorkflows(() => workflows.countByState().active ?? 0);
  const counters = new LimitCounters({ dataDir: config.dataDir, onError: (err) => log.error({ err: String(err) }, 'limit counters could not be saved') });
  const breakers = new BreakerBoard({ onStateChange: (server, state) => log.warn({ server, breaker: state }, `circuit breaker for '${server}' is ${state}`) });
  // DESIGN order: workflow state → (authn at the adapter) → policy → limits → loop → approval.
  const chain = new GuardChain([], {
    onError: (err, phase) => log.error({ err: String(err), phase }, `a guard's ${phase} failed after the call was decided; its store may be out of step until it recovers`),
  })
    .use(createWorkflowStateGuard({ workflows }))
    .use(createPolicyGuard(policies))
    .use(createA2aAllowGuard((server: string): boolean => gateway.pools.get(server)?.manifest.transport === 'a2a'))
    .use(delegation.guard)
    .use(createLimitsGuard({ counters, teamsConfig: () => config.teams, agentById: (id) => registry.get(id) }))
    .use(createLoopGuard({ detector: new LoopDetector(), workflows, agentById: (id) => registry.get(id) }))
    .use(createApprovalGuard({ policies }));
  const gateway = new Gateway({
    config,
    log,
    workflows,
    chain,
    breakers,
    access: policies.access,
    mintUpstreamToken: createUpstreamTokenMinter((claims) => delegation.keys.sign(claims), () => config.publicUrl ?? `http://${config.host}:${config.port}`),
    sinks: [audit.sink, metricsSink(metrics), stepLogSink(log)],
    countCall: (agent, method) => audit.store.countListCall(agent, method),
    a2a: { owners: new SqliteTaskOwners(audit.db), egress: new A2aEgress() },
  });
  // Killing a workflow cancels its in-flight calls and ends its sessions.
  workflows.onStateChange((id, state) => {
    if (state !== 'killed') return;
    for (const cs of [...gateway.sessions.values()]) if (cs.workflowId === id) void gateway.closeSession(cs, 'workflow killed');
  });
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
    close: async () => {
      watcher.close();
      await gateway.close();
      counters.close();
      return { auditUnwritten: audit.close() };
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

  // publicUrl is known once the port is bound (port 0 in tests): read it at request time.
  const authenticate = createHttpAuthenticate(core.authenticator, {
    get publicUrl() {
      return config.publicUrl ?? `http://${config.host}:${config.port}`;
    },
  });
  const mayJoinWorkflow = (caller: Caller) => caller.agent?.canSetWorkflow === true || (caller.via === 'local' && !caller.agent);
  const mcp = new McpHttpHandler(gateway, {
    maxBodyBytes: config.maxBodyBytes,
    authenticate,
    // Joining a named workflow is a right: the agent's manifest grants it (the local agent may in local mode).
    mayJoinWorkflow,
  });
  const hostCheck = createHostCheck(config.host, config.allowedHosts, config.allowedOrigins);

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    // Unauthenticated: up and required only; why a server is down goes to the log and the admin API.
    const servers: Record<string, { up: boolean; required: boolean }> = {};
    let ready = true;
    for (const [name, pool] of gateway.pools) {
      servers[name] = { up: pool.health.up, required: pool.manifest.required };
      if (pool.manifest.required && !pool.health.up) ready = false;
    }
    const audit = core.audit.store.health();
    if (!audit.ok) ready = false;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', servers, audit });
  });
  app.get('/metrics', async (_req, res) => {
    core.metrics.setSessions(gateway.sessions.size);
    res.type(core.metrics.contentType).send(await core.metrics.render());
  });
  app.use('/admin/api', adminGate({ tokens: config.admin.tokens, localMode: () => core.localMode }));
  if (!core.localMode && config.admin.tokens.length === 0) log.warn('the admin API is disabled: identity is configured but gateway.yaml admin.tokens is empty; set admin.tokens to enable it');
  app.use('/admin/api', createInventoryRouter({ gateway, agents: () => core.registry.list() }));
  app.use('/admin/api', createAuditAdminRouter({ store: core.audit.store, workflows: core.audit.workflows }));
  app.get(/^\/\.well-known\/oauth-protected-resource(\/.*)?$/, (req, res) => {
    const resourcePath = resourcePathOfMetadataRequest(req.path);
    if (resourcePath === undefined) return res.status(404).json({ error: 'not_found' });
    if (!hasAuthorizationServer(core.authenticator)) return res.status(404).json({ error: 'not_found', message: NO_AUTHORIZATION_SERVER });
    res.json(protectedResourceMetadata(config.publicUrl ?? '', core.verifier.configuredIssuers(), resourcePath || '/mcp'));
  });
  mountDelegation(app, { delegation: core.delegation, authenticator: core.authenticator, gateway, publicUrl: () => config.publicUrl!, localMode: () => core.localMode });
  mountA2a(app, { gateway, authenticate, localMode: () => core.localMode, mayJoinWorkflow });
  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', message: `No route for ${req.method} ${req.path}. MCP clients connect to /mcp.` });
  });

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const bad = hostCheck(req);
    if (bad) {
      // MCP endpoints answer in JSON-RPC; every other path (admin API, cards, health) in plain JSON.
      const mcpPath = path === '/mcp' || path === '/mcp/' || SERVER_PATH.test(path);
      const body = mcpPath ? { jsonrpc: '2.0', id: null, error: { code: -32000, message: `Forbidden: ${bad}` } } : { error: 'forbidden', message: `Forbidden: ${bad}` };
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return;
    }
    if (path === '/mcp' || path === '/mcp/') {
      mcp.handle(req, res, {}, '/mcp').catch((err: Error) => fail(log, res, err));
      return;
    }
    const m = SERVER_PATH.exec(path);
    if (m) {
      mcp.handle(req, res, { single: m[1] }, path).catch((err: Error) => fail(log, res, err));
      return;
    }
    app(req, res);
  });
  server.keepAliveTimeout = 65_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    await core.close();
    throw listenError(err, config.port);
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
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

function fail(log: Logger, res: ServerResponse, err: Error): void {
  log.error({ err: err.stack }, 'request handling failed');
  if (!res.headersSent) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal gateway error; the gateway log has the details.' } }));
  } else res.end();
}

/**
 * The gateway's HTTP face: the express routes (health, metrics, admin API, OAuth metadata and token exchange, A2A)
 * and the server in front of them that checks Host and Origin and hands /mcp and /servers/{name}/mcp straight to
 * the MCP adapter.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import type { AuditRuntime } from '../audit/index.js';
import type { GatewayConfig } from '../config/types.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Caller } from '../gateway/types.js';
import type { Authenticator } from '../identity/authenticate.js';
import type { DelegationRuntime } from '../identity/delegation-runtime.js';
import type { JwtVerifier } from '../identity/jwt.js';
import type { AgentRegistry } from '../identity/registry.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { SharedStateWatch } from '../gateway/shared-state.js';
import type { StreamEventStore } from '../stores/stream-events.js';
import { mountA2a } from './a2a-server.js';
import { adminGate } from './admin-gate.js';
import { createAuditAdminRouter } from './admin-audit.js';
import { createSpendRouter } from './admin-spend.js';
import { MODEL_PATHS, type ModelRuntime } from './model-route/index.js';
import { createInventoryRouter } from './admin-inventory.js';
import { createHttpAuthenticate, hasAuthorizationServer, NO_AUTHORIZATION_SERVER, protectedResourceMetadata, resourcePathOfMetadataRequest } from './auth-http.js';
import { createHostCheck } from './host-check.js';
import { McpHttpHandler } from './mcp-http.js';
import type { RemoteSessions } from './session-forward.js';
import { sharedStateKeys } from './mcp-2026/state-keys.js';
import type { KeyStore } from '../identity/key-store.js';
import type { ConsoleSessionStore } from '../stores/console-sessions.js';
import { mountDelegation } from './oauth-token.js';
import { mountConsole, mountConsoleApi, type ConsoleDeps } from './console-routes.js';

export interface HttpAppDeps extends ConsoleDeps {
  config: GatewayConfig;
  gateway: Gateway;
  log: Logger;
  authenticator: Authenticator;
  verifier: JwtVerifier;
  registry: AgentRegistry;
  delegation: DelegationRuntime;
  audit: AuditRuntime;
  metrics: Metrics;
  /** The model route (/v1/…), built on the same authentication. */
  models: ModelRuntime;
  /** Whether Redis and PostgreSQL answer (replicas); absent or empty for the embedded stores. */
  shared?: Pick<SharedStateWatch, 'down'>;
  /** Where GET-stream events are kept for Last-Event-ID replay. */
  stores?: { streamEvents: StreamEventStore; keys?: KeyStore; consoleSessions?: ConsoleSessionStore };
  /** No issuer and no API key configured: loopback callers only, as agent `local` (read per request: keys may be added). */
  localMode: () => boolean;
  /** Sessions shared with the other replicas (state.redis). */
  remoteSessions?: RemoteSessions;
}

export interface HttpFront {
  /** The express routes (the admin API's route list is checked against its OpenAPI document). */
  app: express.Express;
  server: http.Server;
}

const SERVER_PATH = /^\/servers\/([a-z0-9][a-z0-9-]{0,31})\/mcp\/?$/;

export function createHttpFront(deps: HttpAppDeps): HttpFront {
  const { config, gateway, log } = deps;
  // publicUrl is known once the port is bound (port 0 in tests): read it at request time.
  const authenticate = createHttpAuthenticate(deps.authenticator, {
    get publicUrl() {
      return config.publicUrl ?? `http://${config.host}:${config.port}`;
    },
  });
  // Joining a named workflow is a right: the agent's manifest grants it (the local agent may in local mode).
  const mayJoinWorkflow = (caller: Caller) => caller.agent?.canSetWorkflow === true || (caller.via === 'local' && !caller.agent);
  const mcp = new McpHttpHandler(gateway, { maxBodyBytes: config.maxBodyBytes, authenticate, mayJoinWorkflow, streamEvents: deps.stores?.streamEvents, remote: deps.remoteSessions, stateKeys: deps.stores?.keys ? sharedStateKeys(deps.stores.keys) : undefined });
  const modelRoute = deps.models.route(authenticate, mayJoinWorkflow);
  const hostCheck = createHostCheck(config.host, config.allowedHosts, config.allowedOrigins);
  const app = createRoutes(deps, authenticate, mayJoinWorkflow);

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
    if (MODEL_PATHS.has(path)) {
      modelRoute.handle(req, res, path).catch((err: Error) => fail(log, res, err));
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
  return { app, server };
}

function createRoutes(deps: HttpAppDeps, authenticate: ReturnType<typeof createHttpAuthenticate>, mayJoinWorkflow: (caller: Caller) => boolean): express.Express {
  const { config, gateway, log } = deps;
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
    const audit = deps.audit.store.health();
    if (!audit.ok) ready = false;
    // Which shared server is down is no secret worth keeping from a probe; its address and error go to the log.
    const down = deps.shared?.down() ?? [];
    if (down.length > 0) ready = false;
    const shared = down.length > 0 ? { unavailable: down.map((h) => h.name) } : {};
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', servers, audit, ...shared });
  });
  app.get('/metrics', async (_req, res) => {
    deps.metrics.setSessions(gateway.sessions.size);
    res.type(deps.metrics.contentType).send(await deps.metrics.render());
  });
  mountConsole(app, deps);
  app.use('/admin/api', adminGate({ tokens: config.admin.tokens, localMode: deps.localMode }));
  if (!deps.localMode() && config.admin.tokens.length === 0) log.warn('the admin API is disabled: identity is configured but gateway.yaml admin.tokens is empty; set admin.tokens to enable it');
  app.use('/admin/api', createInventoryRouter({ gateway, agents: () => deps.registry.list() }));
  app.use('/admin/api', createSpendRouter({ spend: (by, range) => deps.audit.spend(by, range) }));
  app.use('/admin/api', createAuditAdminRouter({ store: deps.audit.store, workflows: deps.audit.workflows }));
  mountConsoleApi(app, deps);
  app.get(/^\/\.well-known\/oauth-protected-resource(\/.*)?$/, (req, res) => {
    const resourcePath = resourcePathOfMetadataRequest(req.path);
    if (resourcePath === undefined) return res.status(404).json({ error: 'not_found' });
    if (!hasAuthorizationServer(deps.authenticator)) return res.status(404).json({ error: 'not_found', message: NO_AUTHORIZATION_SERVER });
    res.json(protectedResourceMetadata(config.publicUrl ?? '', deps.verifier.configuredIssuers(), resourcePath || '/mcp'));
  });
  mountDelegation(app, { delegation: deps.delegation, authenticator: deps.authenticator, gateway, publicUrl: () => config.publicUrl!, localMode: deps.localMode });
  mountA2a(app, { gateway, authenticate, localMode: deps.localMode, mayJoinWorkflow });
  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', message: `No route for ${req.method} ${req.path}. MCP clients connect to /mcp.` });
  });
  return app;
}

function fail(log: Logger, res: ServerResponse, err: Error): void {
  log.error({ err: err.stack }, 'request handling failed');
  if (!res.headersSent) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal gateway error; the gateway log has the details.' } }));
  } else res.end();
}

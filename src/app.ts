/** Assembles a running gateway from configuration: upstream pools, watchers, the guard chain and the HTTP port. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Logger } from 'pino';
import { ConfigWatcher, loadGatewayConfig, type GatewayOverrides } from './config/index.js';
import type { GatewayConfig } from './config/types.js';
import { Gateway } from './gateway/gateway.js';
import { MemoryWorkflows } from './gateway/memory-workflows.js';
import type { Caller } from './gateway/types.js';
import { createHostCheck, isLoopback } from './downstream/host-check.js';
import { McpHttpHandler, type AuthResult } from './downstream/mcp-http.js';
import { createLogger } from './telemetry/logger.js';

export interface StartOptions {
  configPath?: string;
  overrides?: GatewayOverrides;
  logger?: Logger;
}

export interface RunningGateway {
  url: string;
  config: GatewayConfig;
  gateway: Gateway;
  close(): Promise<void>;
}

const SERVER_PATH = /^\/servers\/([a-z0-9][a-z0-9-]{0,31})\/mcp\/?$/;

export class StartupError extends Error {}

export interface Core {
  config: GatewayConfig;
  gateway: Gateway;
  watcher: ConfigWatcher;
  log: Logger;
  /** True when no issuer and no API key is configured: loopback callers only, as agent `local`. */
  localMode: boolean;
  close(): Promise<void>;
}

/** Configuration, upstream pools and the guard chain: everything but the listening port (shared by serve and stdio). */
export async function createCore(opts: StartOptions): Promise<Core> {
  const log = opts.logger ?? createLogger();
  const loaded = loadGatewayConfig(opts.configPath, opts.overrides ?? {});
  if (loaded.problems.length > 0) {
    throw new StartupError(`gateway configuration has problems:\n${loaded.problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n')}`);
  }
  const config = loaded.config;
  const watcher = new ConfigWatcher({ serversDir: config.serversDir, agentsDir: config.agentsDir, logger: log, workspaceDir: process.cwd() });
  for (const p of watcher.problems) log.error({ file: p.file, line: p.line }, `${p.file}:${p.line}: ${p.message}`);
  const localMode = config.auth.issuers.length === 0 && ![...watcher.agents.values()].some((a) => a.credentials.apiKeys.length > 0);

  const workflows = new MemoryWorkflows();
  const gateway = new Gateway({ config, log, workflows });
  await gateway.applyServers(new Map(watcher.servers));
  watcher.on('servers', (change) => {
    void gateway.applyServers(change.servers).then((d) => {
      if (d.added.length + d.changed.length + d.removed.length > 0) log.info(d, 'servers reloaded');
    });
  });
  return {
    config,
    gateway,
    watcher,
    log,
    localMode,
    close: async () => {
      watcher.close();
      await gateway.close();
    },
  };
}

export async function startGateway(opts: StartOptions = {}): Promise<RunningGateway> {
  const core = await createCore(opts);
  const { config, gateway, log } = core;
  const loopbackListen = config.host === '127.0.0.1' || config.host === 'localhost' || config.host === '::1';
  if (core.localMode && !loopbackListen) {
    await core.close();
    throw new StartupError(`refusing to listen on ${config.host} without authentication: configure auth.issuers in gateway.yaml or API keys in agents.d, or listen on 127.0.0.1.`);
  }
  if (core.localMode) log.warn('no issuer and no API key configured: local mode, only loopback callers are accepted, as agent "local"');

  const localCaller: Caller = { agentId: 'local', chain: ['local'], via: 'local' };
  const authenticate = (req: IncomingMessage): AuthResult => {
    if (isLoopback(req.socket.remoteAddress)) return { ok: true, caller: localCaller };
    return { ok: false, status: 403, body: { error: 'forbidden', message: 'Local mode accepts only loopback callers; configure auth to serve others.' } };
  };
  const mcp = new McpHttpHandler(gateway, { maxBodyBytes: config.maxBodyBytes, authenticate });
  const hostCheck = createHostCheck(config.host, config.allowedHosts, config.allowedOrigins);

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const servers: Record<string, { up: boolean; required: boolean; error?: string }> = {};
    let ready = true;
    for (const [name, pool] of gateway.pools) {
      servers[name] = { up: pool.health.up, required: pool.manifest.required, ...(pool.health.lastError ? { error: pool.health.lastError } : {}) };
      if (pool.manifest.required && !pool.health.up) ready = false;
    }
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', servers });
  });
  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', message: `No route for ${req.method} ${req.path}. MCP clients connect to /mcp.` });
  });

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const bad = hostCheck(req);
    if (bad) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `Forbidden: ${bad}` } }));
      return;
    }
    if (path === '/mcp' || path === '/mcp/') {
      mcp.handle(req, res, {}, '/mcp').catch((err: Error) => fail(log, res, err));
      return;
    }
    const m = SERVER_PATH.exec(path);
    if (m) {
      if (!gateway.pools.has(m[1]!)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not_found', message: `No server named '${m[1]}'. Servers: ${[...gateway.pools.keys()].join(', ')}` }));
        return;
      }
      mcp.handle(req, res, { single: m[1] }, path).catch((err: Error) => fail(log, res, err));
      return;
    }
    app(req, res);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  config.publicUrl ??= url;
  log.info({ url, mcp: `${url}/mcp`, servers: [...gateway.pools.keys()] }, 'listening');

  // Probe every server once so /readyz and the log tell an operator at once what is down.
  for (const pool of gateway.pools.values()) {
    void pool.probe({ protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'switchyard-probe', version: '0' } }).then((h) => {
      if (!h.up) log.error({ server: pool.name, err: h.lastError }, `upstream '${pool.name}' is down: ${h.lastError}. Check its manifest (${pool.manifest.source.file}).`);
    });
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    config,
    gateway,
    close: () =>
      (closing ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        await core.close();
      })()),
  };
}

function fail(log: Logger, res: ServerResponse, err: Error): void {
  log.error({ err: err.stack }, 'request handling failed');
  if (!res.headersSent) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: `Internal error: ${err.message}` } }));
  } else res.end();
}

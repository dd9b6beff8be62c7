/** Mounts the web console (/ui/, its sign-in) and the admin routes the console and the approval queue add. */
import type express from 'express';
import type { AuditRuntime } from '../audit/index.js';
import type { GatewayConfig } from '../config/types.js';
import type { ApprovalQueue } from '../gateway/approval-queue.js';
import type { Gateway } from '../gateway/gateway.js';
import type { DelegationRuntime } from '../identity/delegation-runtime.js';
import type { LimitCounters } from '../limits/counters.js';
import { createApprovalsRouter } from './admin-approvals.js';
import { createLiveRouter, type LiveFeed } from './admin-live.js';
import { createToolsRouter } from './admin-tools.js';
import { ConsoleSessions } from './console-session.js';
import { createConsoleStatic } from './console-static.js';
import type { Logger } from 'pino';
import type { ConsoleSessionStore } from '../stores/console-sessions.js';

export interface ConsoleDeps {
  config: GatewayConfig;
  gateway: Gateway;
  audit: AuditRuntime;
  delegation: DelegationRuntime;
  counters: LimitCounters;
  approvals: ApprovalQueue;
  live: LiveFeed;
  localMode: () => boolean;
  /** Console sessions shared by the replicas (store.postgres); absent: this process's memory. */
  stores?: { consoleSessions?: ConsoleSessionStore };
  log?: Pick<Logger, 'error'>;
}

/** Before the admin gate: the console's files and sign-in, and the cookie session that lets its requests through. */
export function mountConsole(app: express.Express, deps: ConsoleDeps): void {
  const { config } = deps;
  const sessions = new ConsoleSessions({
    tokens: config.admin.tokens,
    localMode: deps.localMode,
    secure: () => (config.publicUrl ?? '').startsWith('https:'),
    store: deps.stores?.consoleSessions,
    log: deps.log,
  });
  app.use('/ui/api', sessions.router());
  app.get('/ui', (req, res, next) => (req.originalUrl.split('?')[0] === '/ui' ? res.redirect(301, '/ui/') : next()));
  app.use('/ui', createConsoleStatic());
  app.use('/admin/api', sessions.gate());
}

/** After the admin gate: approvals, live events and overview, tokens, usage, and an upstream's tools. */
export function mountConsoleApi(app: express.Express, deps: ConsoleDeps): void {
  app.use('/admin/api', createApprovalsRouter(deps.approvals));
  app.use('/admin/api', createToolsRouter(deps.gateway));
  app.use('/admin/api', createLiveRouter({ feed: deps.live, audit: deps.audit.store, workflows: deps.audit.workflows, delegation: deps.delegation, counters: deps.counters }));
}

/** Admin API routes for workflows and the audit trail; mounted at /admin/api behind the admin-token middleware. */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { WorkflowState } from '../gateway/types.js';
import { adminOpenApiDocument } from '../audit/openapi.js';
import { AUDIT_OUTCOMES, InvalidQueryError, type AuditFilter, type AuditOutcome } from '../audit/query.js';
import type { AuditLog } from '../stores/audit.js';
import { WORKFLOW_STATES, WorkflowError } from '../audit/index.js';
import type { WorkflowAdmin } from '../stores/workflow-views.js';

export interface AuditAdminDeps {
  store: AuditLog;
  workflows: WorkflowAdmin;
}

type Query = Request['query'];

const ACTIONS: Readonly<Record<string, WorkflowState>> = { pause: 'paused', resume: 'active', kill: 'killed' };

function sendError(res: Response, status: number, error: string, message: string): void {
  res.status(status).json({ error, message });
}

/** One optional string parameter; repeated or nested values are a client mistake. */
function str(q: Query, name: string): string | undefined {
  const value = q[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidQueryError(`query parameter "${name}" must be given once, as a plain value`);
  return value === '' ? undefined : value;
}

/** ISO 8601 or epoch milliseconds → epoch ms. */
function time(q: Query, name: string): number | undefined {
  const value = str(q, name);
  if (value === undefined) return undefined;
  const ms = /^\d{1,15}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new InvalidQueryError(`${name} must be an ISO 8601 time (2026-01-31T12:00:00Z) or epoch milliseconds, got "${value}"`);
  }
  return ms;
}

function limit(q: Query): number | undefined {
  const value = str(q, 'limit');
  if (value === undefined) return undefined;
  if (!/^\d{1,4}$/.test(value)) throw new InvalidQueryError(`limit must be an integer from 1 to 1000, got "${value}"`);
  return Number(value);
}

function oneOf<T extends string>(q: Query, name: string, allowed: readonly T[]): T | undefined {
  const value = str(q, name);
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InvalidQueryError(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

function auditFilter(q: Query): AuditFilter {
  return {
    agent: str(q, 'agent'),
    user: str(q, 'user'),
    tool: str(q, 'tool'),
    server: str(q, 'server'),
    outcome: oneOf<AuditOutcome>(q, 'outcome', AUDIT_OUTCOMES),
    workflowId: str(q, 'workflowId'),
    q: str(q, 'q'),
    reason: str(q, 'reason'),
    since: time(q, 'since'),
    until: time(q, 'until'),
    limit: limit(q),
    cursor: str(q, 'cursor'),
  };
}

/** Resolve on 'drain', or when the client has gone away (then the stream stops). */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export function createAuditAdminRouter({ store, workflows }: AuditAdminDeps): Router {
  const router = Router();

  router.get('/workflows', async (req, res) => {
    res.json(
      await workflows.list({
        agent: str(req.query, 'agent'),
        state: oneOf<WorkflowState>(req.query, 'state', WORKFLOW_STATES),
        since: time(req.query, 'since'),
        until: time(req.query, 'until'),
        limit: limit(req.query),
        cursor: str(req.query, 'cursor'),
      }),
    );
  });

  router.get('/workflows/:id', async (req, res) => {
    const after = str(req.query, 'afterStep');
    if (after !== undefined && !/^\d{1,15}$/.test(after)) throw new InvalidQueryError(`afterStep must be a step number, got "${after}"`);
    const tree = await workflows.tree(req.params.id, { afterStep: after === undefined ? undefined : Number(after), limit: limit(req.query) });
    if (!tree) return sendError(res, 404, 'not_found', `no workflow "${req.params.id}"; list them with GET /admin/api/workflows`);
    res.json(tree);
  });

  router.post('/workflows/:id/:action', express.json({ limit: '16kb' }), async (req, res, next) => {
    const target = Object.hasOwn(ACTIONS, req.params.action) ? ACTIONS[req.params.action] : undefined;
    if (!target) return next();
    const body: unknown = req.body;
    const why = typeof body === 'object' && body !== null && typeof (body as { why?: unknown }).why === 'string' ? (body as { why: string }).why : `admin ${req.params.action}`;
    await workflows.setState(req.params.id, target, why);
    res.json(await workflows.get(req.params.id));
  });

  router.get('/audit', async (req, res) => {
    res.json(await store.queryAudit(auditFilter(req.query)));
  });

  router.get('/audit/export', async (req, res) => {
    const rows = store.exportAudit(auditFilter(req.query));
    res.status(200).setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    let chunk = '';
    try {
      for await (const record of rows) {
        if (res.destroyed) return;
        chunk += `${JSON.stringify(record)}\n`;
        // Write in ~64 KiB chunks and respect backpressure, so a big export never buffers whole in memory.
        if (chunk.length >= 65_536) {
          const ok = res.write(chunk);
          chunk = '';
          if (!ok) await drained(res);
        }
      }
    } catch (err) {
      // Headers are gone: cutting the stream is the only way left to tell the client it is incomplete.
      res.destroy(err as Error);
      return;
    }
    res.end(chunk);
  });

  router.get('/audit/verify', async (_req, res) => {
    res.json(await store.verify());
  });

  router.get('/audit/counts', async (req, res) => {
    const sinceDay = str(req.query, 'sinceDay');
    if (sinceDay !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(sinceDay)) {
      throw new InvalidQueryError(`sinceDay must be a day as YYYY-MM-DD, got "${sinceDay}"`);
    }
    res.json({ counts: await store.callCounts({ agent: str(req.query, 'agent'), sinceDay }) });
  });

  router.get('/openapi.json', (req, res) => {
    res.json(adminOpenApiDocument(req.baseUrl || '/admin/api'));
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err instanceof InvalidQueryError) return sendError(res, 400, 'bad_request', err.message);
    if (err instanceof WorkflowError) {
      const status = err.code === 'unknown_workflow' ? 404 : err.code === 'illegal_transition' ? 409 : 400;
      return sendError(res, status, err.code === 'unknown_workflow' ? 'not_found' : err.code, err.message);
    }
    const type = (err as { type?: unknown }).type;
    if (type === 'entity.parse.failed') return sendError(res, 400, 'bad_request', 'the request body is not valid JSON; send {"why": "..."} or no body');
    sendError(res, 500, 'internal', `${(err as Error).message ?? String(err)}; see the gateway log`);
  });

  return router;
}

/** Admin API for the approval queue (SPEC §10): pending and decided calls, approve or deny with a reason. */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { ApprovalQueue } from '../gateway/approval-queue.js';
import './admin-console-openapi.js';
import { APPROVAL_STATES, type ApprovalRecord, type ApprovalState } from '../stores/approvals.js';

const DECISIONS: Readonly<Record<string, 'approved' | 'denied'>> = { approve: 'approved', deny: 'denied' };
const MAX_REASON = 2000;

function view(r: ApprovalRecord): Record<string, unknown> {
  return {
    ...r,
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    ...(r.decidedAt !== undefined ? { decidedAt: new Date(r.decidedAt).toISOString() } : {}),
  };
}

function bad(res: Response, message: string): void {
  res.status(400).json({ error: 'bad_request', message });
}

export function createApprovalsRouter(queue: ApprovalQueue): Router {
  const router = Router();

  router.get('/approvals', async (req, res) => {
    const { state, limit, before } = req.query;
    const states = [...APPROVAL_STATES, 'decided'];
    if (state !== undefined && (typeof state !== 'string' || !states.includes(state))) return bad(res, `state must be one of ${states.join(', ')}`);
    if (limit !== undefined && (typeof limit !== 'string' || !/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)) return bad(res, 'limit must be an integer from 1 to 1000');
    if (before !== undefined && typeof before !== 'string') return bad(res, 'before must be one approval id, given once');
    const approvals = await queue.list({ state: (state as ApprovalState | 'decided' | undefined) ?? 'pending', limit: limit ? Number(limit) : undefined, before });
    const pageSize = limit ? Number(limit) : 100;
    res.json({ approvals: approvals.map(view), nextBefore: approvals.length === pageSize ? approvals[approvals.length - 1]!.id : null });
  });

  router.get('/approvals/:id', async (req, res) => {
    const r = await queue.get(req.params.id);
    if (!r) return void res.status(404).json({ error: 'not_found', message: `no approval "${req.params.id}"; list pending ones with GET /admin/api/approvals` });
    res.json(view(r));
  });

  for (const [verb, outcome] of Object.entries(DECISIONS)) {
    router.post(`/approvals/:id/${verb}`, express.json({ limit: '16kb' }), async (req, res) => {
      const body = (req.body ?? {}) as { reason?: unknown; argsDigest?: unknown };
      if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > MAX_REASON)) return bad(res, `reason must be text of at most ${MAX_REASON} characters`);
      if (body.argsDigest !== undefined && typeof body.argsDigest !== 'string') return bad(res, 'argsDigest must be the argsDigest string of the approval you decide on');
      const by = typeof res.locals.admin === 'string' ? res.locals.admin : 'admin';
      const result = await queue.decide(String(req.params.id), outcome, { by, reason: body.reason as string | undefined, expectDigest: body.argsDigest as string | undefined });
      if (result.ok) return void res.json(view(result.record));
      const status = result.error === 'not_found' ? 404 : 409;
      res.status(status).json({ error: result.error, message: result.message, ...(result.record ? { approval: view(result.record) } : {}) });
    });
  }

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if ((err as { type?: unknown }).type === 'entity.parse.failed') return bad(res, 'the request body is not valid JSON; send {"reason": "..."} or no body');
    next(err);
  });
  return router;
}

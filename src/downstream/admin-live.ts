/**
 * Admin API for the console's live views: `GET /events` (SSE of finished steps and workflow state changes),
 * `GET /overview` (refusals in the last hour by reason, workflows by state), `GET /agents/{id}/usage` (window
 * totals against limits) and `GET /tokens` (live delegated tokens).
 */
import { Router, type Response } from 'express';
import type { AuditLog } from '../stores/audit.js';
import type { WorkflowRegistryView } from '../stores/workflow-registry.js';
import type { DelegationRuntime } from '../identity/delegation-runtime.js';
import type { LimitCounters } from '../limits/counters.js';
import type { Step, StepOutcome, StepSink } from '../gateway/types.js';

export interface LiveEvent {
  type: 'step' | 'workflow';
  [key: string]: unknown;
}

const MAX_SUBSCRIBERS = 100;

/** A step sink that fans finished steps out to the console's open event streams (nothing is kept). */
export class LiveFeed implements StepSink {
  private readonly subscribers = new Set<(e: LiveEvent) => void>();

  record(step: Step, o: StepOutcome): void {
    if (this.subscribers.size === 0) return;
    this.publish({
      type: 'step',
      workflowId: step.workflowId,
      step: step.stepNo,
      parentStep: step.parentStep ?? null,
      agent: step.caller.agentId,
      kind: step.kind,
      server: step.server ?? null,
      tool: step.exposedName,
      outcome: o.outcome,
      reason: o.reason ?? null,
      startedAt: new Date(step.startedAt).toISOString(),
      durationMs: o.durationMs,
    });
  }

  publish(e: LiveEvent): void {
    for (const s of this.subscribers) s(e);
  }

  subscribe(listener: (e: LiveEvent) => void): (() => void) | undefined {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) return undefined;
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }
}

export interface LiveDeps {
  feed: LiveFeed;
  audit: AuditLog;
  workflows: WorkflowRegistryView;
  delegation: DelegationRuntime;
  counters: LimitCounters;
  now?: () => number;
}

function sse(res: Response, e: LiveEvent): void {
  res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
}

export function createLiveRouter({ feed, audit, workflows, delegation, counters, now = Date.now }: LiveDeps): Router {
  const router = Router();
  workflows.onStateChange((workflowId, state, why) => feed.publish({ type: 'workflow', workflowId, state, why: why ?? null }));

  router.get('/events', (req, res) => {
    res.status(200).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.flushHeaders();
    const unsubscribe = feed.subscribe((e) => sse(res, e));
    if (!unsubscribe) {
      res.end(`event: error\ndata: ${JSON.stringify({ message: 'too many open event streams; close a console tab' })}\n\n`);
      return;
    }
    res.write(': connected\n\n');
    // A comment every 15 s keeps proxies from closing an idle stream.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
    });
  });

  router.get('/overview', async (_req, res) => {
    const refusals = await audit.refusalsSince(now() - 60 * 60 * 1000);
    res.json({ refusalsLastHour: refusals, workflows: await workflows.countByState() });
  });

  router.get('/agents/:id/usage', (req, res) => {
    res.json({ agent: req.params.id, windows: counters.windowUsage('agent', req.params.id) ?? null });
  });

  router.get('/tokens', async (req, res) => {
    const agent = typeof req.query.agent === 'string' && req.query.agent !== '' ? req.query.agent : undefined;
    const tokens = (await delegation.store.liveTokens())
      .filter((t) => agent === undefined || t.agent === agent || t.parentAgent === agent)
      .slice(0, 1000)
      .map((t) => ({ ...t, issuedAt: new Date(t.issuedAt).toISOString(), expiresAt: new Date(t.expiresAt).toISOString() }));
    res.json({ tokens });
  });

  return router;
}

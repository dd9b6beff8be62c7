/**
 * Admin API routes that list what the gateway federates and whom it serves: `GET /servers` (health, breaker,
 * transport) and `GET /agents` (policy and limits). Secrets stay out: header and env values, URL user info and
 * query values (masked), and API key hashes are never listed (header and env names are, so an admin sees what is set).
 */
import { Router } from 'express';
import type { AgentManifest, ServerManifest } from '../config/types.js';
import type { Gateway } from '../gateway/gateway.js';
import { maskUrls, safeUrl } from '../util/shown.js';

export interface InventoryDeps {
  gateway: Gateway;
  agents: () => readonly AgentManifest[];
}

function serverView(gw: Gateway, m: ServerManifest): Record<string, unknown> {
  const pool = gw.pools.get(m.name);
  const health = pool?.health;
  return {
    name: m.name,
    transport: m.transport,
    up: health?.up ?? false,
    required: m.required,
    breaker: gw.breakers?.states()[m.name] ?? 'closed',
    restarts: pool ? { ...pool.restarts } : { ended: 0, failedStarts: 0 },
    ...(health?.checkedAt ? { checkedAt: new Date(health.checkedAt).toISOString() } : {}),
    ...(health?.lastError ? { lastError: maskUrls(health.lastError) } : {}),
    ...(m.url ? { url: safeUrl(m.url) } : {}),
    ...(m.command ? { command: m.command } : {}),
    headers: Object.keys(m.headers),
    env: Object.keys(m.env),
    tools: m.tools,
    session: m.session,
    timeoutMs: m.timeoutMs,
    ...(m.identity ? { identity: m.identity } : {}),
    ...(m.allowOrigins ? { allowOrigins: m.allowOrigins } : {}),
    source: m.source.file,
  };
}

function agentView(a: AgentManifest): Record<string, unknown> {
  return {
    id: a.id,
    ...(a.owner ? { owner: a.owner } : {}),
    ...(a.team ? { team: a.team } : {}),
    credentials: { apiKeys: a.credentials.apiKeys.length, ...(a.credentials.jwt ? { jwt: a.credentials.jwt } : {}) },
    tools: a.tools,
    ...(a.prompts ? { prompts: a.prompts } : {}),
    ...(a.resources ? { resources: a.resources } : {}),
    a2a: a.a2a,
    models: a.models,
    delegation: a.delegation,
    limits: a.limits,
    canSetWorkflow: a.canSetWorkflow === true,
    source: a.source.file,
  };
}

export function createInventoryRouter({ gateway, agents }: InventoryDeps): Router {
  const router = Router();
  router.get('/servers', (_req, res) => {
    const servers = [...gateway.pools.values()].map((p) => serverView(gateway, p.manifest)).sort((a, b) => String(a.name).localeCompare(String(b.name)));
    res.json({ servers });
  });
  router.get('/agents', (_req, res) => {
    res.json({ agents: agents().map(agentView) });
  });
  return router;
}

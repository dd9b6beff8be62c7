/** GET /admin/api/servers: each upstream's health with the reason it is down; what /readyz leaves out for the public. */
import { Router } from 'express';
import { addAdminApiPaths } from '../audit/openapi.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { safeUrl } from '../util/shown.js';

export interface ServerStatus {
  name: string;
  transport: string;
  required: boolean;
  up: boolean;
  /** Why it is down (operator wording: may name the command or the manifest field to check; never credentials). */
  lastError: string | null;
  checkedAt: string | null;
  manifest: string;
  /** http, sse and a2a servers: the URL with userinfo and query values masked. */
  url?: string;
}

export function serverStatus(pool: UpstreamPool): ServerStatus {
  const m = pool.manifest;
  return {
    name: m.name,
    transport: m.transport,
    required: m.required,
    up: pool.health.up,
    lastError: pool.health.up ? null : (pool.health.lastError ?? null),
    checkedAt: pool.health.checkedAt ? new Date(pool.health.checkedAt).toISOString() : null,
    manifest: m.source.file,
    ...(m.url ? { url: safeUrl(m.url) } : {}),
  };
}

addAdminApiPaths(
  {
    '/servers': {
      get: {
        tags: ['servers'],
        summary: 'List the upstream servers with their health and, for those down, why.',
        responses: {
          200: {
            description: 'Servers in configuration order.',
            content: { 'application/json': { schema: { type: 'object', properties: { servers: { type: 'array', items: { $ref: '#/components/schemas/ServerStatus' } } } } } },
          },
        },
      },
    },
  },
  {
    ServerStatus: {
      type: 'object',
      required: ['name', 'transport', 'required', 'up', 'lastError', 'checkedAt', 'manifest'],
      properties: {
        name: { type: 'string' },
        transport: { type: 'string', enum: ['stdio', 'http', 'sse', 'a2a'] },
        required: { type: 'boolean' },
        up: { type: 'boolean' },
        lastError: { type: ['string', 'null'] },
        checkedAt: { type: ['string', 'null'], format: 'date-time' },
        manifest: { type: 'string', description: 'Path of the manifest file.' },
        url: { type: 'string', description: 'Upstream URL with userinfo and query values masked.' },
      },
    },
  },
);

export function createServersAdminRouter(pools: () => Iterable<UpstreamPool>): Router {
  const router = Router();
  router.get('/servers', (_req, res) => {
    res.json({ servers: [...pools()].map(serverStatus) });
  });
  return router;
}

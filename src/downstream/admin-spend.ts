/**
 * `GET /admin/api/spend?by=model|agent|team&from=&to=`: model spend from the audit trail (the console's models page).
 * The JSON is described in src/stores/sqlite/spend.ts and in the OpenAPI document.
 */
import { Router, type Request, type Response } from 'express';
import type { Db } from '../audit/db.js';
import { addAdminApiPaths } from '../audit/openapi.js';
import { InvalidQueryError } from '../audit/query.js';
import { querySpend, MAX_BUCKETS, SPEND_BUCKETS, SPEND_DIMENSIONS, type SpendBucket, type SpendDimension, type SpendReport } from '../stores/sqlite/spend.js';
import type { Awaitable } from '../stores/types.js';
import type { AuditStore } from '../audit/store.js';

function param(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new InvalidQueryError(`query parameter "${name}" must be given once, as a plain value`);
  return v;
}

function time(req: Request, name: string): number | undefined {
  const v = param(req, name);
  if (v === undefined) return undefined;
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new InvalidQueryError(`${name} must be an ISO 8601 time (2026-01-31T12:00:00Z) or epoch milliseconds, got "${v}"`);
  return ms;
}

/** Where the report comes from: the SQLite trail (db and its writer), or any store's `spend` (PgAuditConsole.spend). */
export type SpendSource =
  | { db: Db; store: Pick<AuditStore, 'flush'> }
  | { spend(by: SpendDimension, range: { from?: number; to?: number; bucket?: SpendBucket }): Awaitable<SpendReport> };

export function createSpendRouter(deps: SpendSource): Router {
  const router = Router();
  router.get('/spend', async (req: Request, res: Response) => {
    try {
      const by = param(req, 'by') ?? 'model';
      if (!(SPEND_DIMENSIONS as readonly string[]).includes(by)) throw new InvalidQueryError(`by must be one of ${SPEND_DIMENSIONS.join(', ')}, got "${by}"`);
      const bucket = param(req, 'bucket');
      if (bucket !== undefined && !(SPEND_BUCKETS as readonly string[]).includes(bucket)) throw new InvalidQueryError(`bucket must be one of ${SPEND_BUCKETS.join(', ')}, got "${bucket}"`);
      const range = { from: time(req, 'from'), to: time(req, 'to'), bucket: bucket as SpendBucket | undefined };
      if ('spend' in deps) return void res.json(await deps.spend(by as SpendDimension, range));
      // Steps still queued for the batched writer count too.
      deps.store.flush();
      res.json(querySpend(deps.db, by as SpendDimension, range));
    } catch (err) {
      if (err instanceof InvalidQueryError) return void res.status(400).json({ error: 'invalid_query', message: err.message });
      throw err;
    }
  });
  return router;
}

const figures = {
  type: 'object',
  required: ['calls', 'tokens', 'costUsd', 'estimatedCalls'],
  properties: {
    calls: { type: 'integer' },
    tokens: {
      type: 'object',
      required: ['input', 'output', 'cachedInput', 'total'],
      properties: { input: { type: 'integer' }, output: { type: 'integer' }, cachedInput: { type: 'integer' }, total: { type: 'integer' } },
    },
    costUsd: { type: 'number' },
    estimatedCalls: { type: 'integer', description: 'Calls whose tokens the gateway estimated (no provider usage).' },
  },
};

addAdminApiPaths(
  {
    '/spend': {
      get: {
        tags: ['models'],
        summary: 'Model calls, tokens and cost per model, agent or team over a time range, from the audit trail.',
        parameters: [
          { name: 'by', in: 'query', required: false, description: 'Group by (default model).', schema: { enum: SPEND_DIMENSIONS } },
          { name: 'from', in: 'query', required: false, description: 'ISO 8601 time or epoch ms; default 24 hours before `to`.', schema: { type: 'string' } },
          { name: 'to', in: 'query', required: false, description: 'ISO 8601 time or epoch ms (exclusive); default now.', schema: { type: 'string' } },
          { name: 'bucket', in: 'query', required: false, description: `Also answer \`series\`: the figures per UTC hour or day and key (at most ${MAX_BUCKETS} buckets in the range).`, schema: { enum: SPEND_BUCKETS } },
        ],
        responses: {
          200: { description: 'Spend, groups by cost, highest first.', content: { 'application/json': { schema: { $ref: '#/components/schemas/SpendReport' } } } },
          400: { description: 'A query parameter is invalid.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
  },
  {
    SpendFigures: figures,
    SpendReport: {
      type: 'object',
      required: ['by', 'from', 'to', 'groups', 'total'],
      properties: {
        by: { enum: SPEND_DIMENSIONS },
        from: { type: 'string', format: 'date-time' },
        to: { type: 'string', format: 'date-time' },
        groups: { type: 'array', items: { allOf: [{ $ref: '#/components/schemas/SpendFigures' }, { type: 'object', required: ['key'], properties: { key: { type: ['string', 'null'], description: 'Model, agent or team; null for agents without a team.' } } }] } },
        total: { $ref: '#/components/schemas/SpendFigures' },
        bucket: { enum: SPEND_BUCKETS, description: 'Only with the bucket parameter.' },
        series: {
          description: 'Only with the bucket parameter: figures per bucket and key, in time order; empty buckets left out.',
          type: 'array',
          items: { allOf: [{ $ref: '#/components/schemas/SpendFigures' }, { type: 'object', required: ['start', 'key'], properties: { start: { type: 'string', format: 'date-time' }, key: { type: ['string', 'null'] } } }] },
        },
      },
    },
  },
);

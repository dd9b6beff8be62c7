/**
 * Every route of the admin API is in its OpenAPI document, and every documented operation is routed: the routes are
 * read off the express app of a gateway started in process (sub-routers included), so a route added anywhere counts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startGateway, type RunningGateway } from '../../src/app.js';
import { adminOpenApiDocument } from '../../src/audit/openapi.js';
import { scratch, stopAll } from '../helpers/gateway.js';

interface LayerLike {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[] };
}

/** "METHOD /path/{param}" for every route under the layers, prefixed by the paths they are mounted at. */
function routesOf(stack: readonly LayerLike[], prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const p of paths) {
        if (typeof p !== 'string') continue;
        for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.push(`${method.toUpperCase()} ${prefix}${p}`);
      }
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...routesOf(layer.handle.stack, prefix + mount));
    }
  }
  return out;
}

let gw: RunningGateway;

beforeAll(async () => {
  const dir = scratch('openapi-routes-');
  for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'gateway.yaml'), '{}\n');
  gw = await startGateway({
    configPath: join(dir, 'gateway.yaml'),
    overrides: { port: 0, host: '127.0.0.1', serversDir: join(dir, 'servers.d'), agentsDir: join(dir, 'agents.d'), dataDir: join(dir, 'data') },
    logger: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  await gw?.close();
  await stopAll();
});

describe('admin API routes and openapi.json', () => {
  it('routes and documented operations are the same set', () => {
    const stack = (gw.app as unknown as { router: { stack: LayerLike[] } }).router.stack;
    const routed = new Set(
      routesOf(stack)
        .filter((r) => r.split(' ')[1]!.startsWith('/admin/api/'))
        .map((r) => r.replace(' /admin/api', ' ').replace(/:([A-Za-z]+)/g, '{$1}'))
        // One express route serves the three workflow state changes; the document names each.
        .flatMap((r) => (r === 'POST /workflows/{id}/{action}' ? ['pause', 'resume', 'kill'].map((a) => `POST /workflows/{id}/${a}`) : [r])),
    );
    const doc = adminOpenApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    expect(routed.size).toBeGreaterThan(10);
    expect([...routed].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !routed.has(r))).toEqual([]);
    for (const r of ['POST /tokens/{jti}/revoke', 'GET /tokens/{jti}', 'GET /servers', 'GET /agents']) expect(routed.has(r)).toBe(true);
  });
});

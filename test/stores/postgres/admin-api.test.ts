// The admin API's workflow and audit routes served from PostgreSQL: PgAuditConsole's reads with PgWorkflows' states
// and PgAuditLog behind the same router the SQLite registry serves, over HTTP.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createAuditAdminRouter } from '../../../src/downstream/admin-audit.js';
import { createSpendRouter } from '../../../src/downstream/admin-spend.js';
import { MemoryControlBus } from '../../../src/stores/memory/bus.js';
import { PgAuditConsole } from '../../../src/stores/postgres/audit/console.js';
import { PgWorkflows } from '../../../src/stores/postgres/workflows.js';
import type { WorkflowAdmin } from '../../../src/stores/workflow-views.js';
import { caller, ok, refused, step } from '../../audit/helpers.js';
import { removeStoreDirs, storeDir } from '../factories.js';
import { openPgAudit } from './audit-factory.js';
import { dropPgDatabases, pgUnavailable } from './databases.js';

if (pgUnavailable) console.log(`skipping the PostgreSQL admin API test: ${pgUnavailable}`);

afterEach(removeStoreDirs);
afterAll(dropPgDatabases);

describe.skipIf(pgUnavailable)('admin API on PostgreSQL', () => {
  it('lists, shows, pauses and searches workflows and audit records from the shared store', async () => {
    const { log, pg, close } = await openPgAudit(storeDir());
    const states = await PgWorkflows.open({ db: pg, bus: new MemoryControlBus() });
    const reads = new PgAuditConsole(pg, () => log.flush());
    const workflows: WorkflowAdmin = {
      get: (id) => reads.get(id),
      list: (filter) => reads.list(filter),
      tree: (id, page) => reads.tree(id, page),
      setState: (id, state, why) => states.setState(id, state, why),
    };
    const id = states.begin({ caller: caller('root'), kind: 'mcp' });
    for (let i = 1; i <= 3; i++) {
      const stepNo = await states.nextStep(id);
      log.record(step({ workflowId: id, stepNo, parentStep: i > 1 ? 1 : undefined, args: { sql: `select ${i} from users` } }), i === 3 ? refused('policy_denied') : ok());
    }
    const app = express();
    app.use('/admin/api', createAuditAdminRouter({ store: log, workflows }));
    app.use('/admin/api', createSpendRouter({ spend: (by, range) => reads.spend(by, range) }));
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/api`;
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`);
      return { status: res.status, body: (await res.json()) as any };
    };
    try {
      expect((await get('/workflows')).body.workflows.map((w: any) => [w.id, w.steps])).toEqual([[id, 3]]);
      const tree = await get(`/workflows/${id}`);
      expect(tree.status).toBe(200);
      expect(tree.body.tree.map((n: any) => [n.step, n.children?.map((c: any) => c.step)])).toEqual([[1, [2, 3]]]);
      expect(await get('/workflows/nope')).toMatchObject({ status: 404, body: { error: 'not_found' } });
      expect((await get('/workflows?state=sleepy')).status).toBe(400);
      const paused = await fetch(`${base}/workflows/${id}/pause`, { method: 'POST' });
      expect(await paused.json()).toMatchObject({ id, state: 'paused', why: 'admin pause' });
      expect(states.state(id)).toBe('paused');
      expect((await get('/audit?q=3%20from%20users')).body.records.map((r: any) => r.step)).toEqual([3]);
      expect((await get('/audit?outcome=refused')).body.records.map((r: any) => r.reason)).toEqual(['policy_denied']);
      expect((await get('/audit/verify')).body).toMatchObject({ ok: true, records: 3 });
      const model = await states.nextStep(id);
      log.record(
        { ...step({ workflowId: id, stepNo: model, server: undefined, target: 'gpt-a' }), kind: 'model/call', model: { model: 'gpt-a', provider: 'openai', upstreamModel: 'gpt-4o', reserve: { tokens: 9, costUsd: 1, inputTokens: 3 }, fingerprint: 'fp-gpt-a' } },
        { outcome: 'ok', durationMs: 5, tokens: 12, model: { model: 'gpt-a', provider: 'openai', upstreamModel: 'gpt-4o', tokens: { input: 10, output: 2, cachedInput: 0 }, costUsd: 0.25 } },
      );
      const spend = await get('/spend?by=model');
      expect(spend.status).toBe(200);
      expect(spend.body.groups).toEqual([{ key: 'gpt-a', calls: 1, tokens: { input: 10, output: 2, cachedInput: 0, total: 12 }, costUsd: 0.25, estimatedCalls: 0 }]);
      expect(await get('/spend?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z')).toMatchObject({ status: 400, body: { error: 'invalid_query' } });
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await states.close();
      await close();
    }
  });
});

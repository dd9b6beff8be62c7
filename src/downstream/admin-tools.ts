/** Admin API: `GET /servers/{name}/tools`, the tools one upstream lists, with their schemas, for the console. */
import { Router } from 'express';
import { SUPPORTED_PROTOCOL_VERSIONS, type Gateway } from '../gateway/gateway.js';

const ADMIN_CLIENT = 'switchyard-admin-tools';

export function createToolsRouter(gateway: Gateway): Router {
  const router = Router();
  router.get('/servers/:name/tools', async (req, res) => {
    const pool = gateway.pools.get(req.params.name);
    if (!pool) return void res.status(404).json({ error: 'not_found', message: `no server "${req.params.name}"; list them with GET /admin/api/servers` });
    const init = { protocolVersion: SUPPORTED_PROTOCOL_VERSIONS[0]!, capabilities: {}, clientInfo: { name: ADMIN_CLIENT, version: '1' } };
    try {
      const session = await pool.acquire(ADMIN_CLIENT, init, {});
      const tools = [...(await gateway.toolsOf(session)).values()].map((t) => ({ ...t, exposed: gateway.toolAllowedByManifest(pool.name, String(t.name)) }));
      res.json({ server: pool.name, tools });
    } catch (err) {
      res.status(502).json({ error: 'upstream_unavailable', message: `could not list the tools of ${pool.name}: ${(err as Error).message}; see its health on GET /admin/api/servers` });
    } finally {
      if (!pool.shared) await pool.release(ADMIN_CLIENT);
    }
  });
  return router;
}

/** Opens session sharing on Redis for a replica (state.redis), logging once when Redis goes away and once when it is back. */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import { RedisSessionDirectory } from '../stores/redis/session-directory.js';
import { SessionSharing } from './session-forward.js';

/** Waits up to 5 s for Redis, so the first sessions after start are not refused while it connects. */
export async function openSessionSharing(config: GatewayConfig, log: Logger): Promise<SessionSharing> {
  let sharing: SessionSharing | undefined;
  let wasUp = false;
  const directory = new RedisSessionDirectory({
    url: config.state.redis!,
    onHealth: (h) => {
      if (h.ok) {
        if (wasUp) log.info('session directory (Redis) reachable again: sessions continue across replicas');
        wasUp = true;
        sharing?.resync();
      } else if (wasUp) {
        log.error({ err: h.error }, `session directory (Redis) unreachable: new sessions are ${config.state.failMode === 'closed' ? 'refused' : 'served by their replica alone'} and sessions of other replicas get 503 until it reconnects (retrying)`);
      }
    },
  });
  sharing = new SessionSharing({ directory, log, failMode: config.state.failMode, idleMs: (config.sessions?.idleSeconds ?? 900) * 1000 });
  if (!(await directory.ready(5000))) {
    log.error({ err: directory.health().error }, `session directory (Redis) unreachable at start: new sessions are ${config.state.failMode === 'closed' ? 'refused' : 'served by their replica alone'} until it connects (retrying)`);
    wasUp = true; // the recovery line is then logged when it connects
  }
  return sharing;
}

/** Opens session sharing on Redis for a replica (state.redis), logging once when Redis goes away and once when it is back. */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import { RedisSessionDirectory } from '../stores/redis/session-directory.js';
import { SessionSharing } from './session-forward.js';

export function openSessionSharing(config: GatewayConfig, log: Logger): SessionSharing {
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
  return sharing;
}

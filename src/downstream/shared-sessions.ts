/** Opens session sharing for a replica (state.redis), logging once when Redis goes away and once when it is back. */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import type { SharedSessionDirectory } from '../stores/sessions.js';
import { SessionSharing } from './session-forward.js';

/** `directory` is the one openStores opened on the replica's Redis client, after waiting for it at start: no second wait here. */
export async function openSessionSharing(config: GatewayConfig, log: Logger, directory: SharedSessionDirectory): Promise<SessionSharing> {
  let wasUp = false;
  const sharing = new SessionSharing({ directory, log, failMode: config.state.failMode, idleMs: (config.sessions?.idleSeconds ?? 900) * 1000 });
  directory.onHealth((h) => {
    if (h.ok) {
      if (wasUp) log.info('session directory (Redis) reachable again: sessions continue across replicas');
      wasUp = true;
      sharing.resync();
    } else if (wasUp) {
      log.error({ err: h.error }, `session directory (Redis) unreachable: new sessions are ${config.state.failMode === 'closed' ? 'refused' : 'served by their replica alone'} and sessions of other replicas get 503 until it reconnects (retrying)`);
    }
  });
  if (directory.health().ok) wasUp = true;
  else {
    log.error({ err: directory.health().error }, `session directory (Redis) unreachable at start: new sessions are ${config.state.failMode === 'closed' ? 'refused' : 'served by their replica alone'} until it connects (retrying)`);
    wasUp = true; // the recovery line is then logged when it connects
  }
  return sharing;
}

/**
 * Downstream log levels: a client's logging/setLevel reaches its own upstream sessions as asked, and a shared
 * upstream runs at the most verbose level any client entitled to it asked for.
 */
import type { Logger } from 'pino';
import type { UpstreamPool } from '../upstream/pool.js';
import type { UpstreamSession } from '../upstream/session.js';
import type { RpcNotification } from '../util/jsonrpc.js';
import { reaches, type Access } from './access.js';
import type { ClientSession } from './client-session.js';
import { admitsLevel, mostVerbose } from './notify.js';

/** What the level rules read of the gateway. */
export interface LevelHost {
  readonly log: Logger;
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly sessions: ReadonlyMap<string, ClientSession>;
  serversInView(cs: ClientSession): string[];
  access(cs: ClientSession): Access;
}

export class LogLevels {
  constructor(private readonly host: LevelHost) {}

  /** logging/setLevel from a client: its own upstream sessions take it; a shared one goes to the most verbose level asked. */
  set(cs: ClientSession, level: string): Promise<void> {
    cs.logLevel = level;
    const sent: Array<Promise<unknown>> = [];
    for (const name of this.host.serversInView(cs)) {
      const pool = this.host.pools.get(name);
      if (pool?.shared) sent.push(this.applyShared(name));
      else {
        const live = pool?.peek(cs.id);
        if (live) sent.push(this.applyTo(live, level));
      }
    }
    return Promise.all(sent).then(() => undefined);
  }

  /** The shared session of a server takes the most verbose level of the clients entitled to it. */
  applyShared(server: string): Promise<unknown> {
    const live = this.host.pools.get(server)?.peek('');
    if (!live) return Promise.resolve();
    const entitled = [...this.host.sessions.values()].filter((o) => (!o.view.single || o.view.single === server) && reaches(this.host.access(o), server));
    const level = mostVerbose(entitled);
    return level === undefined ? Promise.resolve() : this.applyTo(live, level);
  }

  /** Send logging/setLevel to an upstream session that declares logging and is not at that level already. */
  applyTo(s: UpstreamSession, level: string): Promise<unknown> {
    if (s.logLevel === level || !s.serverCapabilities.logging) return Promise.resolve();
    s.logLevel = level;
    return s.request('logging/setLevel', { level }).then((res) => {
      if (res.error) this.host.log.warn({ server: s.name, level, err: res.error.message }, 'upstream refused logging/setLevel');
    });
  }
}

/** Whether a log message from a call on a shared upstream is at a level this client asked for. */
export function admitsLog(cs: ClientSession, upstream: UpstreamSession, msg: RpcNotification): boolean {
  return upstream.manifest.session !== 'shared' || msg.method !== 'notifications/message' || admitsLevel(cs, upstream, msg);
}

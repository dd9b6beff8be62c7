/**
 * Notifications and requests an upstream session sends outside a call: list changes invalidate the catalog and
 * reach the clients for whom they are news, resource updates reach the subscription they were routed for, and
 * log messages on a shared upstream reach each entitled client at its own level.
 */
import { qualifyUri } from '../catalog/naming.js';
import type { Catalog } from '../catalog/catalog.js';
import type { IndexKind } from '../catalog/upstream-index.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { SessionEvents } from '../upstream/session.js';
import type { RpcNotification, RpcRequest, RpcResponse } from '../util/jsonrpc.js';
import { reaches, type Access } from './access.js';
import type { ClientSession } from './client-session.js';
import { admitsLevel, hasListed } from './notify.js';

/** What the relay reads of the gateway. */
export interface EventHost {
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly sessions: ReadonlyMap<string, ClientSession>;
  readonly catalog: Catalog;
  access(cs: ClientSession): Access;
  askOnSessionStream(cs: ClientSession, msg: RpcRequest): Promise<RpcResponse>;
  readonly listChanges?: ReadonlySet<(servers: readonly string[], kind: IndexKind) => void>;
}

const LIST_CHANGED: Record<string, IndexKind | undefined> = {
  'notifications/tools/list_changed': 'tools',
  'notifications/prompts/list_changed': 'prompts',
  'notifications/resources/list_changed': 'resources',
};

/** Events of an upstream session that serves one client. */
export function clientEvents(host: EventHost, cs: ClientSession, server: string): SessionEvents {
  return {
    onNotification: (msg) => relayNotification(host, cs, server, msg),
    onServerRequest: (msg) => host.askOnSessionStream(cs, msg),
  };
}

/** Events of a shared upstream session: each notification goes to every client entitled to the server. */
export function sharedEvents(host: EventHost, server: string): SessionEvents {
  return {
    onNotification: (msg) => {
      const changed = LIST_CHANGED[msg.method];
      const isLog = msg.method === 'notifications/message';
      const shared = changed || isLog ? host.pools.get(server)?.peek('') : undefined;
      if (changed) host.catalog.listChanged(server, shared, changed); // also when no client is connected to hear it
      if (changed) for (const listener of host.listChanges ?? []) listener([server], changed);
      for (const cs of host.sessions.values()) {
        if (cs.view.single ? cs.view.single !== server : !reaches(host.access(cs), server)) continue;
        if (isLog && !admitsLevel(cs, shared, msg)) continue;
        relayNotification(host, cs, server, msg);
      }
    },
    // A shared upstream asking outside any call has no single client to ask.
    onServerRequest: (msg) => Promise.resolve({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `${msg.method} is not available outside a call on a shared upstream` } }),
  };
}

function relayNotification(host: EventHost, cs: ClientSession, server: string, msg: RpcNotification): void {
  const m = msg.method;
  const changed = LIST_CHANGED[m];
  if (changed) {
    const live = host.pools.get(server)?.peek(cs.id);
    host.catalog.listChanged(server, live, changed);
    // Not news before the upstream answered any list of that kind (e.g. right after its own initialize).
    if (!live || !hasListed(live, changed)) return;
  }
  if (m === 'notifications/resources/updated') {
    const uri = msg.params?.uri;
    if (typeof uri !== 'string') return;
    // Delivered in the form the client subscribed with, and only for the server that subscription was routed to.
    const qualified = qualifyUri(server, uri);
    const exposed = cs.subscriptions.get(uri) === server ? uri : cs.subscriptions.get(qualified) === server ? qualified : undefined;
    if (exposed === undefined) return;
    if (exposed !== uri) msg = { ...msg, params: { ...msg.params, uri: exposed } };
  }
  cs.push(msg);
}

/**
 * subscriptions/listen: one long SSE response per subscription. The first message acknowledges what it will
 * carry; then list changes fan in from every upstream the caller may see, filtered per caller and per opted-in
 * type, each tagged with the subscription id (the listen request's id).
 */
import type { ServerResponse } from 'node:http';
import { reaches } from '../../gateway/access.js';
import type { View } from '../../gateway/client-session.js';
import type { Gateway } from '../../gateway/gateway.js';
import type { ListKind } from '../../gateway/notify.js';
import type { Caller } from '../../gateway/types.js';
import { errorResponse, RpcErrorCode, type RpcId, type RpcResponse } from '../../util/jsonrpc.js';

export const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';
const KEEPALIVE_MS = 15_000;

/** The filter keys of the revision, per list kind. */
const FILTER_KEY: Record<ListKind, 'toolsListChanged' | 'promptsListChanged' | 'resourcesListChanged'> = {
  tools: 'toolsListChanged',
  prompts: 'promptsListChanged',
  resources: 'resourcesListChanged',
};

interface Subscription {
  caller: Caller;
  view: View;
  kinds: Set<ListKind>;
  send: (kind: ListKind) => void;
}

/** What the listen request asked for, or the -32602 that refuses it. */
export function readFilter(id: RpcId, params: Record<string, unknown> | undefined): Set<ListKind> | RpcResponse {
  const filter = params?.notifications;
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    return errorResponse(id, RpcErrorCode.InvalidParams, 'subscriptions/listen needs params.notifications, an object such as {"toolsListChanged": true}.');
  }
  const kinds = new Set<ListKind>();
  for (const [kind, key] of Object.entries(FILTER_KEY) as Array<[ListKind, string]>) {
    if ((filter as Record<string, unknown>)[key] === true) kinds.add(kind);
  }
  return kinds;
}

export class ListenHub {
  private readonly subs = new Set<Subscription>();

  constructor(private readonly gw: Gateway) {}

  get size(): number {
    return this.subs.size;
  }

  /** Servers changed lists of `kind`: every subscription whose caller can see one of them hears it. */
  serversChanged(servers: readonly string[], kind: ListKind): void {
    for (const s of this.subs) {
      if (!s.kinds.has(kind)) continue;
      const access = this.gw.accessFor(s.caller);
      const sees = s.view.single !== undefined ? servers.includes(s.view.single) : servers.some((name) => reaches(access, name));
      if (sees) s.send(kind);
    }
  }

  /** A caller's own upstream session said its list changed: news to that caller's subscriptions on that view. */
  callerChanged(principal: string, view: View, kind: ListKind): void {
    for (const s of this.subs) {
      if (s.kinds.has(kind) && s.caller.principal === principal && s.view.single === view.single) s.send(kind);
    }
  }

  /** Hold `res` open as the subscription's stream until the client closes it. */
  open(res: ServerResponse, id: RpcId, caller: Caller, view: View, kinds: Set<ListKind>, onClose: () => void): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
    const write = (msg: unknown) => res.write(`event: message\ndata: ${JSON.stringify(msg)}\n\n`);
    const tag = { [SUBSCRIPTION_ID]: id };
    const accepted = Object.fromEntries([...kinds].map((k) => [FILTER_KEY[k], true]));
    write({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: accepted, _meta: tag } });
    const sub: Subscription = {
      caller,
      view,
      kinds,
      send: (kind) => write({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed`, params: { _meta: tag } }),
    };
    this.subs.add(sub);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    keepAlive.unref();
    res.once('close', () => {
      clearInterval(keepAlive);
      this.subs.delete(sub);
      onClose();
    });
  }
}

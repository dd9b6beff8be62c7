/**
 * Which client hears which upstream notification: list changes only when they are news to it, log messages only
 * for clients entitled to the server and at the level each client asked for, even on a shared upstream.
 */
import type { RpcNotification } from '../util/jsonrpc.js';
import type { UpstreamSession } from '../upstream/session.js';
import type { ClientSession } from './client-session.js';

/** MCP log levels, least severe first. */
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
/** What an upstream emits when nobody set its level, as far as a client that never set one is concerned. */
const DEFAULT_LEVEL = 'info';

export const LIST_KINDS = ['tools', 'prompts', 'resources'] as const;
export type ListKind = (typeof LIST_KINDS)[number];

const KIND_BIT: Record<ListKind, number> = { tools: 1, prompts: 2, resources: 4 };

export function listKindOf(method: string): ListKind | undefined {
  if (method.startsWith('tools/')) return 'tools';
  if (method.startsWith('prompts/')) return 'prompts';
  if (method.startsWith('resources/')) return 'resources';
  return undefined;
}

/** The kind whose list a `notifications/{kind}/list_changed` announces. */
export function changedKind(method: string): ListKind | undefined {
  if (!method.endsWith('/list_changed')) return undefined;
  return listKindOf(method.slice('notifications/'.length));
}

/** Record that a list of this kind was answered (to a client, or by an upstream session). */
export function markListed(holder: { listed: number }, kind: ListKind): void {
  holder.listed |= KIND_BIT[kind];
}

export function hasListed(holder: { listed: number }, kind: ListKind): boolean {
  return (holder.listed & KIND_BIT[kind]) !== 0;
}

/** Position of a log level, least severe first (unknown levels count as the default). */
export function rank(level: unknown): number {
  const i = LEVELS.indexOf(String(level));
  return i < 0 ? LEVELS.indexOf(DEFAULT_LEVEL) : i;
}

/** Whether a log message at `level` from upstream session `up` is for this client by its own logging/setLevel. */
export function admitsLevel(cs: ClientSession, up: UpstreamSession | undefined, msg: RpcNotification): boolean {
  const level = msg.params?.level;
  if (cs.logLevel !== undefined) return rank(level) >= rank(cs.logLevel);
  // The upstream was made more verbose for another client: this one still gets what it got before.
  return up?.logLevel === undefined || rank(level) >= rank(DEFAULT_LEVEL);
}

/**
 * The level for a shared upstream: the most verbose any of its clients asked for, where a client that asked for
 * none counts as the default; undefined while nobody asked (the upstream keeps its own default).
 */
export function mostVerbose(clients: Iterable<ClientSession>): string | undefined {
  let best: string | undefined;
  let unset = false;
  for (const cs of clients) {
    if (cs.logLevel === undefined) unset = true;
    else if (best === undefined || rank(cs.logLevel) < rank(best)) best = cs.logLevel;
  }
  return best !== undefined && unset && rank(DEFAULT_LEVEL) < rank(best) ? DEFAULT_LEVEL : best;
}

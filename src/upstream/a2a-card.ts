/**
 * Finding a federated A2A agent: its card (by card URL or base URL), the JSON-RPC endpoint the card names, and a
 * fetch that injects the manifest's headers. Cards are cached per manifest object, so a reload that changes the
 * manifest fetches a fresh card while unchanged servers keep theirs.
 */
import { AGENT_CARD_PATH, type AgentCard, type AgentInterface } from '@a2a-js/sdk';
import { DefaultAgentCardResolver } from '@a2a-js/sdk/client';
import type { ServerManifest } from '../config/types.js';
import { maskUrls, safeUrl } from '../util/shown.js';

/** How long a card is trusted before the next session refetches it (skills may change without a reload). */
const CARD_TTL_MS = 5 * 60_000;
const CARD_TIMEOUT_MS = 10_000;

export interface ResolvedAgent {
  card: AgentCard;
  cardUrl: string;
  /** Absolute URL of the agent's JSON-RPC 1.0 endpoint (0.3 if that is all it offers), when it has one. */
  jsonRpc?: { url: string; protocolVersion: string };
}

/** `message` may be shown to callers (it names only the server); `operator` has the specifics for the log. */
export class AgentCardError extends Error {
  constructor(readonly server: string, message: string, readonly operator = message) {
    super(message);
    this.name = 'AgentCardError';
  }
}

/** The card URL a manifest names: `url` itself when it points at a JSON document, else `{url}/.well-known/agent-card.json`. */
export function cardUrlOf(url: string): string {
  const u = new URL(url);
  if (u.pathname.endsWith('.json')) return u.toString();
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${AGENT_CARD_PATH}`;
  return u.toString();
}

/** A fetch that adds the manifest's headers (credentials) to every request, without overriding the caller's own. */
export function fetchWithHeaders(headers: Readonly<Record<string, string>>): typeof fetch {
  if (Object.keys(headers).length === 0) return (input, init) => fetch(input, init);
  return (input, init) => {
    const merged = new Headers(headers);
    new Headers(init?.headers).forEach((value, name) => merged.set(name, value));
    return fetch(input, { ...init, headers: merged });
  };
}

/** The interface to relay JSON-RPC to: 1.0 preferred, relative URLs resolved against the card's own URL. */
export function jsonRpcInterface(card: AgentCard, cardUrl: string): ResolvedAgent['jsonRpc'] {
  const candidates = (card.supportedInterfaces ?? []).filter((i) => i.protocolBinding.toUpperCase() === 'JSONRPC');
  const best = candidates.find((i) => i.protocolVersion === '1.0') ?? candidates.find((i) => i.protocolVersion.startsWith('1.')) ?? candidates[0];
  return best ? { url: new URL(best.url, cardUrl).toString(), protocolVersion: best.protocolVersion || '1.0' } : undefined;
}

/** Absolute interface URLs, so SDK clients built from the card work whatever the agent wrote. */
function absolutize(card: AgentCard, cardUrl: string): AgentCard {
  const supportedInterfaces: AgentInterface[] = (card.supportedInterfaces ?? []).map((i) => ({ ...i, url: new URL(i.url, cardUrl).toString() }));
  return { ...card, supportedInterfaces };
}

const cache = new WeakMap<ServerManifest, { at: number; agent: Promise<ResolvedAgent> }>();

/** Fetch (or reuse) the agent card of an `a2a` manifest. Rejects with an AgentCardError that tells the admin what to fix. */
export function resolveAgent(manifest: ServerManifest, now = Date.now()): Promise<ResolvedAgent> {
  const hit = cache.get(manifest);
  if (hit && now - hit.at < CARD_TTL_MS) return hit.agent;
  const agent = fetchAgent(manifest);
  cache.set(manifest, { at: now, agent });
  agent.catch(() => {
    if (cache.get(manifest)?.agent === agent) cache.delete(manifest);
  });
  return agent;
}

/** Forget a cached card (e.g. the agent answered in a way that suggests it changed). */
export function forgetAgent(manifest: ServerManifest): void {
  cache.delete(manifest);
}

async function fetchAgent(manifest: ServerManifest): Promise<ResolvedAgent> {
  if (!manifest.url) throw new AgentCardError(manifest.name, `the agent card of '${manifest.name}' could not be read`, 'an a2a server needs url (its agent card URL or base URL)');
  const cardUrl = cardUrlOf(manifest.url);
  const base = fetchWithHeaders(manifest.headers);
  const timed: typeof fetch = (input, init) => base(input, { ...init, signal: AbortSignal.timeout(CARD_TIMEOUT_MS) });
  const resolver = new DefaultAgentCardResolver({ fetchImpl: timed, legacyCompat: { enabled: true } });
  let card: AgentCard;
  try {
    card = await resolver.resolve(cardUrl, '');
  } catch (err) {
    const why = err instanceof Error ? (err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message) : String(err);
    throw new AgentCardError(manifest.name, `the agent card of '${manifest.name}' could not be read`, maskUrls(`cannot read the agent card at ${safeUrl(cardUrl)}: ${why}`));
  }
  const absolute = absolutize(card, cardUrl);
  return { card: absolute, cardUrl, jsonRpc: jsonRpcInterface(absolute, cardUrl) };
}

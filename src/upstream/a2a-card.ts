/**
 * Finding a federated A2A agent: its card (by card URL or base URL, fetched under the egress rules of a2a-egress.ts)
 * and the JSON-RPC endpoint the card names. Cards are cached per manifest object, so a reload that changes the
 * manifest fetches a fresh card while unchanged servers keep theirs.
 */
import { AGENT_CARD_PATH, type AgentCard, type AgentInterface } from '@a2a-js/sdk';
import { DefaultAgentCardResolver } from '@a2a-js/sdk/client';
import type { ServerManifest } from '../config/types.js';
import { EgressRefused, type A2aEgress } from './a2a-egress.js';
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

/** `message` is safe to show any caller (it names the agent only); `detail` (card URL, cause, manifest file) is for the log. */
export class AgentCardError extends Error {
  constructor(readonly server: string, message: string, readonly detail: string = message) {
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
export function resolveAgent(manifest: ServerManifest, egress: A2aEgress, now = Date.now()): Promise<ResolvedAgent> {
  const hit = cache.get(manifest);
  if (hit && now - hit.at < CARD_TTL_MS) return hit.agent;
  const agent = fetchAgent(manifest, egress);
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

async function fetchAgent(manifest: ServerManifest, egress: A2aEgress): Promise<ResolvedAgent> {
  if (!manifest.url) {
    const detail = `server ${manifest.name}: an a2a server needs url (its agent card URL or base URL) in ${manifest.source.file}`;
    throw new AgentCardError(manifest.name, `A2A agent '${manifest.name}' has no card URL; an admin must set url in its manifest.`, detail);
  }
  const cardUrl = cardUrlOf(manifest.url);
  const base = egress.fetchFor(manifest);
  const timed: typeof fetch = (input, init) => base(input, { ...init, signal: AbortSignal.timeout(CARD_TIMEOUT_MS) });
  const resolver = new DefaultAgentCardResolver({ fetchImpl: timed, legacyCompat: { enabled: true } });
  let card: AgentCard;
  try {
    card = await resolver.resolve(cardUrl, '');
  } catch (err) {
    const refused = err instanceof EgressRefused ? err : err instanceof Error && err.cause instanceof EgressRefused ? err.cause : undefined;
    const why = err instanceof Error ? (err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message) : String(err);
    const detail = `cannot read the agent card of '${manifest.name}' at ${safeUrl(cardUrl)}: ${maskUrls(why)}. Check url and headers in ${manifest.source.file}.`;
    throw new AgentCardError(manifest.name, refused?.message ?? `cannot read the agent card of A2A agent '${manifest.name}'; the gateway log names the cause (an admin can check url and headers in its manifest).`, detail);
  }
  const absolute = absolutize(card, cardUrl);
  return { card: absolute, cardUrl, jsonRpc: jsonRpcInterface(absolute, cardUrl) };
}

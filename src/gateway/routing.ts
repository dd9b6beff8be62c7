/**
 * Where a client's resource URI, template or prompt name goes, worked out from the upstreams' own lists (cached per
 * upstream session in the UpstreamIndex) and the configuration rank of the servers in view.
 */
import { withTimeout } from '../catalog/lists.js';
import { parseQualifiedUri } from '../catalog/naming.js';
import { EMPTY_INDEX, exposeUri, ownerOf, type RankedIndexes, type ResourceIndex } from '../catalog/routes.js';
import type { ClientSession } from './client-session.js';
import type { Gateway } from './gateway.js';

export interface ResourceTarget {
  server: string;
  /** The upstream's own URI (or template). */
  uri: string;
}

export interface PromptTarget {
  server: string;
  /** The upstream's own prompt name. */
  name: string;
  /** The namespaced name policies decide on. */
  exposed: string;
}

/**
 * Every server in view, best rank first, with what it serves (empty for a server that could not be listed in time).
 * Synchronous once every session in view is connected and listed, as it is for all but a session's first reads.
 */
export function rankedIndexes(gw: Gateway, cs: ClientSession): RankedIndexes | Promise<RankedIndexes> {
  const servers = gw.order.sort(gw.serversInView(cs));
  const known: Array<{ server: string; index: ResourceIndex }> = [];
  for (const server of servers) {
    const live = gw.pools.get(server)?.peek(cs.id);
    const index = live && gw.index.peekResources(live);
    if (!index) break;
    known.push({ server, index });
  }
  if (known.length === servers.length) return known;
  const ms = gw.config.listTimeoutMs;
  return Promise.all(
    servers.map(async (server) => {
      try {
        const index = await withTimeout(
          gw.upstreamFor(cs, server).then((s) => gw.index.resourcesOf(s)),
          ms,
        );
        return { server, index };
      } catch (err) {
        gw.log.warn({ server, err: (err as Error).message }, 'resources of an upstream unknown for routing');
        return { server, index: EMPTY_INDEX };
      }
    }),
  );
}

/** The server and upstream URI behind a URI as the client wrote it (plain, or qualified when servers share it). */
export async function resolveResource(gw: Gateway, cs: ClientSession, exposed: string): Promise<ResourceTarget | undefined> {
  if (cs.view.single) return gw.pools.has(cs.view.single) ? { server: cs.view.single, uri: exposed } : undefined;
  const q = parseQualifiedUri(exposed);
  if (q) return gw.pools.has(q.server) ? q : undefined;
  const server = ownerOf(await rankedIndexes(gw, cs), exposed);
  return server ? { server, uri: exposed } : undefined;
}

/** How each listed resource URI or template is shown to this session. */
export async function uriExposer(gw: Gateway, cs: ClientSession): Promise<(server: string, uri: string, kind: 'uri' | 'template') => string> {
  if (cs.view.single) return (_server, uri) => uri;
  const ranked = await rankedIndexes(gw, cs);
  return (server, uri, kind) => exposeUri(ranked, server, uri, kind);
}

/**
 * The prompt behind a name as the client wrote it, checked against the upstream's own prompts list (so shortened names
 * resolve without anyone listing first); undefined for a name the upstream does not have. Throws when the upstream
 * cannot be reached or listed.
 */
export async function resolvePrompt(gw: Gateway, cs: ClientSession, name: string): Promise<PromptTarget | undefined> {
  const q = cs.view.single ? { server: cs.view.single, name } : gw.names.resolve(name);
  if (!q || !gw.pools.has(q.server)) return undefined;
  const prompts = await gw.index.promptsOf(await gw.upstreamFor(cs, q.server));
  const exposed = cs.view.single ? gw.names.expose(q.server, name) : name;
  const found = cs.view.single ? (prompts.has(name) ? name : undefined) : gw.names.find(q.server, name, q.name, prompts);
  return found === undefined ? undefined : { server: q.server, name: found, exposed: cs.view.single ? exposed : gw.names.expose(q.server, found) };
}

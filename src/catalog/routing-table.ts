/**
 * The routing table of one view. `/mcp` is federated: names are `{server}__{name}` and resource URIs that several
 * servers share are qualified for all but the best-ranked. `/servers/{name}/mcp` is single: names and URIs are the
 * upstream's own. Both route from the upstreams' own lists (the UpstreamIndex) and the configuration rank, never
 * from what a client listed before.
 */
import type { Logger } from 'pino';
import type { UpstreamSession } from '../upstream/session.js';
import { withTimeout, type Item } from './lists.js';
import { parseQualifiedUri, type NameTable } from './naming.js';
import { EMPTY_INDEX, exposeUri, ownerOf, type RankedIndexes, type ResourceIndex, type ServerOrder } from './routes.js';
import type { UpstreamIndex } from './upstream-index.js';
import type { ViewSource } from './view.js';

export interface NameTarget {
  server: string;
  /** The upstream's own tool or prompt name (a guess until confirmed against its list). */
  name: string;
  /** The namespaced name policies decide on. */
  exposed: string;
}

export interface ResourceTarget {
  server: string;
  /** The upstream's own URI (or template). */
  uri: string;
}

export type PromptTarget = NameTarget;

export type UriExposer = (server: string, uri: string, kind: 'uri' | 'template') => string;

/** What a routing table reads of the catalog. */
export interface RoutingCatalog {
  readonly names: NameTable;
  readonly order: ServerOrder;
  readonly index: UpstreamIndex;
  readonly log: Logger;
  listTimeoutMs(): number;
  /** Whether a server is configured (in any view). */
  has(server: string): boolean;
}

/**
 * The server and upstream name behind a tool or prompt name as the client wrote it, in the view of `single` (one
 * server, names unprefixed) or the federated one: it reads only the name table and the configured servers, so a call
 * routes by name without a routing table or a view being built for it.
 */
export function resolveNameIn(catalog: Pick<RoutingCatalog, 'names' | 'has'>, single: string | undefined, name: string): NameTarget | undefined {
  if (single !== undefined) return catalog.has(single) ? { server: single, name, exposed: catalog.names.expose(single, name) } : undefined;
  const q = catalog.names.resolve(name);
  if (!q || !catalog.has(q.server)) return undefined;
  return { server: q.server, name: q.name, exposed: name };
}

export abstract class RoutingTable {
  constructor(
    protected readonly catalog: RoutingCatalog,
    readonly view: ViewSource,
  ) {}

  /** The server and upstream name behind a tool or prompt name as the client wrote it, before any upstream is asked. */
  abstract resolveName(name: string): NameTarget | undefined;

  /** How a server's tool or prompt is named in this view's lists. */
  abstract showName(server: string, name: string): string;

  /** Whether lists show the namespaced names policies decide on (showName is policyName), or the upstream's own. */
  abstract readonly namespaced: boolean;

  /** The upstream name behind `target` among the names the server lists now, or undefined when it has no such name. */
  abstract confirmName<T>(target: NameTarget, listed: ReadonlyMap<string, T>): string | undefined;

  /** The server and upstream URI behind a URI as the client wrote it. */
  abstract resolveResource(uri: string): Promise<ResourceTarget | undefined>;

  /** How each listed resource URI or template is shown in this view. */
  abstract uriExposer(): Promise<UriExposer>;

  /** The namespaced name policies decide on, whatever the view shows. */
  policyName(server: string, name: string): string {
    return this.catalog.names.expose(server, name);
  }

  /**
   * The prompt behind a name as the client wrote it, checked against the upstream's own prompts list (so shortened
   * names resolve without anyone listing first); undefined for a name the upstream does not have. Throws when the
   * upstream cannot be reached or listed.
   */
  async resolvePrompt(name: string): Promise<PromptTarget | undefined> {
    const target = this.resolveName(name);
    if (!target) return undefined;
    const prompts = await this.catalog.index.promptsOf(await this.view.session(target.server));
    const found = this.confirmName(target, prompts);
    return found === undefined ? undefined : { server: target.server, name: found, exposed: this.policyName(target.server, found) };
  }

  /** The tool definitions a server lists now, by upstream name (listed once per session, kept until they change). */
  async toolsOf(server: string): Promise<Map<string, Item>> {
    return this.catalog.index.toolsOf(await this.view.session(server));
  }
}

export class SingleRoutes extends RoutingTable {
  readonly namespaced = false;

  private get server(): string | undefined {
    const s = this.view.single!;
    return this.catalog.has(s) ? s : undefined;
  }

  resolveName(name: string): NameTarget | undefined {
    return resolveNameIn(this.catalog, this.view.single!, name);
  }

  showName(_server: string, name: string): string {
    return name;
  }

  confirmName<T>(target: NameTarget, listed: ReadonlyMap<string, T>): string | undefined {
    return listed.has(target.name) ? target.name : undefined;
  }

  resolveResource(uri: string): Promise<ResourceTarget | undefined> {
    const server = this.server;
    return Promise.resolve(server === undefined ? undefined : { server, uri });
  }

  uriExposer(): Promise<UriExposer> {
    return Promise.resolve((_server, uri) => uri);
  }
}

export class FederatedRoutes extends RoutingTable {
  readonly namespaced = true;

  resolveName(name: string): NameTarget | undefined {
    return resolveNameIn(this.catalog, undefined, name);
  }

  showName(server: string, name: string): string {
    return this.catalog.names.expose(server, name);
  }

  confirmName<T>(target: NameTarget, listed: ReadonlyMap<string, T>): string | undefined {
    return this.catalog.names.find(target.server, target.exposed, target.name, listed);
  }

  async resolveResource(exposed: string): Promise<ResourceTarget | undefined> {
    const q = parseQualifiedUri(exposed);
    if (q) return this.catalog.has(q.server) ? q : undefined;
    const server = ownerOf(await this.ranked(), exposed);
    return server ? { server, uri: exposed } : undefined;
  }

  async uriExposer(): Promise<UriExposer> {
    const ranked = await this.ranked();
    return (server, uri, kind) => exposeUri(ranked, server, uri, kind);
  }

  /**
   * Every server in view, best rank first, with what it serves (empty for a server that could not be listed in time).
   * Synchronous once every session in view is connected and listed, as it is for all but a session's first reads.
   */
  ranked(): RankedIndexes | Promise<RankedIndexes> {
    const { index, order, log } = this.catalog;
    const servers = order.sort(this.view.servers);
    const known: Array<{ server: string; index: ResourceIndex }> = [];
    for (const server of servers) {
      const live = this.view.peek(server);
      const idx = live && index.peekResources(live);
      if (!idx) break;
      known.push({ server, index: idx });
    }
    if (known.length === servers.length) return known;
    const ms = this.catalog.listTimeoutMs();
    return Promise.all(
      servers.map(async (server) => {
        try {
          return { server, index: await withTimeout(this.view.session(server).then((s: UpstreamSession) => index.resourcesOf(s)), ms) };
        } catch (err) {
          log.warn({ server, err: (err as Error).message }, 'resources of an upstream unknown for routing');
          return { server, index: EMPTY_INDEX };
        }
      }),
    );
  }
}

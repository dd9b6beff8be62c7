/**
 * The catalog: which names and URIs exist, where each one routes, and what each caller is shown. It owns the name
 * table, the configuration rank, the per-session index used at call time, the manifests' tool filters and the list
 * cache; the gateway hands it a view of one client and asks.
 */
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import type { UpstreamSession } from '../upstream/session.js';
import { compileGlobs } from '../util/glob.js';
import { markList } from '../util/raw-response.js';
import { ListCache, type CachedKind, type UpstreamPage } from './list-cache.js';
import { fetchAll, fetchMergedPage, LIST_KEY, promisesListChanged, requestPage, serves, type Item, type ListMethod } from './lists.js';
import { MERGE } from './merge.js';
import { NameTable } from './naming.js';
import { FederatedRoutes, SingleRoutes, type RoutingCatalog, type RoutingTable } from './routing-table.js';
import { ServerOrder } from './routes.js';
import { UpstreamIndex, type IndexKind } from './upstream-index.js';
import type { ViewSource } from './view.js';

export interface CatalogOptions {
  log: Logger;
  /** Each upstream's share of a list must arrive within this (gateway.yaml listTimeoutMs). */
  listTimeoutMs: () => number;
  /** Hears of each list an upstream session answered in full for the index (its later list_changed is news). */
  onIndexed?: (session: UpstreamSession, kind: IndexKind) => void;
}

export class Catalog implements RoutingCatalog {
  readonly names = new NameTable();
  /** Configuration rank of the servers: decides which of several servers sharing a resource URI keeps it plain. */
  readonly order = new ServerOrder();
  /** Tools, prompts and resources per upstream session, for call-time existence checks and routing. */
  readonly index: UpstreamIndex;
  /** Upstream list pages per server and variant, for answering lists without asking every upstream again. */
  readonly cache = new ListCache();
  readonly log: Logger;
  readonly listTimeoutMs: () => number;
  private readonly toolFilters = new Map<string, (name: string) => boolean>();
  /** The server and list variant of each upstream session a client listed through, so its index reads the cache. */
  private readonly variants = new WeakMap<UpstreamSession, { server: string; variant: string }>();

  constructor(opts: CatalogOptions) {
    this.log = opts.log;
    this.listTimeoutMs = opts.listTimeoutMs;
    this.index = new UpstreamIndex(opts.listTimeoutMs, opts.onIndexed, (session, method, ms) => this.listAll(session, method, ms));
  }

  // ---- servers -------------------------------------------------------------------------------------------

  /** A server started, or its manifest changed in place: take its filters, and list it again. */
  configure(m: ServerManifest): void {
    const include = compileGlobs(m.tools.include);
    const exclude = compileGlobs(m.tools.exclude);
    const known = this.toolFilters.has(m.name);
    this.toolFilters.set(m.name, (n) => include(n) && !exclude(n));
    if (known) this.cache.invalidate(m.name);
  }

  /** A server stopped (removed, or restarting with a new connection): its names, filters and lists go. */
  forget(server: string): void {
    this.toolFilters.delete(server);
    this.names.forgetServer(server);
    this.cache.forget(server);
  }

  /** The configured servers, in configuration order: kept ones keep their rank, new ones rank last. */
  applyOrder(servers: Iterable<string>): void {
    this.order.apply(servers);
  }

  has(server: string): boolean {
    return this.toolFilters.has(server);
  }

  toolAllowed(server: string, name: string): boolean {
    return this.toolFilters.get(server)?.(name) ?? false;
  }

  /** An upstream session said a list changed: its index and every variant of that server's cached list go. */
  listChanged(server: string, session: UpstreamSession | undefined, kind: CachedKind): void {
    if (session) this.index.invalidate(session, kind);
    this.cache.invalidate(server, [kind]);
  }

  // ---- views ---------------------------------------------------------------------------------------------

  /** The routing table of one client's view. */
  routes(view: ViewSource): RoutingTable {
    return view.single !== undefined ? new SingleRoutes(this, view) : new FederatedRoutes(this, view);
  }

  /**
   * One page of a merged list as this caller is shown it. A dead or slow upstream is skipped, never waited on past
   * listTimeoutMs; throws BadCursorError for a cursor the gateway did not make.
   */
  async list(method: ListMethod, view: ViewSource, cursor: string | undefined): Promise<Record<string, unknown>> {
    const ms = this.listTimeoutMs();
    const sources = view.servers.map((server) => ({ server, page: (at: string) => this.page(method, view, server, at, ms) }));
    const page = await fetchMergedPage(method, sources, cursor, ms, this.log);
    const routes = this.routes(view);
    const items: Item[] = await MERGE[method](page.items, { access: view.access, routes, toolAllowed: (s, n) => this.toolAllowed(s, n) });
    const result: Record<string, unknown> = { [LIST_KEY[method]]: items };
    if (page.nextCursor) result.nextCursor = page.nextCursor;
    markList(result, LIST_KEY[method]);
    return result;
  }

  /** One upstream page through the client's session: kept for servers that promise list_changed, else asked each time. */
  private page(method: ListMethod, view: ViewSource, server: string, cursor: string, ms: number): UpstreamPage | Promise<UpstreamPage> {
    const live = view.peek(server);
    if (live) return this.pageVia(live, method, view, server, cursor, ms);
    return view.session(server).then((s) => this.pageVia(s, method, view, server, cursor, ms));
  }

  private pageVia(session: UpstreamSession, method: ListMethod, view: ViewSource, server: string, cursor: string, ms: number): UpstreamPage | Promise<UpstreamPage> {
    if (!serves(session, method)) return { items: [] };
    const load = () => requestPage(session, method, cursor, ms);
    if (!promisesListChanged(session, method)) return load();
    const variant = view.variant(server);
    this.variants.set(session, { server, variant });
    return this.cache.page(server, variant, method, cursor, session, load);
  }

  /** Every page of one session's list for its index: from the cache when its client listed through it, else asked. */
  private async listAll(session: UpstreamSession, method: ListMethod, ms: number): Promise<Item[]> {
    const known = this.variants.get(session);
    if (!known || !serves(session, method) || !promisesListChanged(session, method)) return fetchAll(session, method, ms);
    const out: Item[] = [];
    let cursor = '';
    for (let n = 0; n < 1000; n++) {
      const at = cursor;
      const page = await this.cache.page(known.server, known.variant, method, at, session, () => requestPage(session, method, at, ms));
      out.push(...page.items);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return out;
  }
}

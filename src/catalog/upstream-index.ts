/**
 * What each upstream session serves, listed in full once and kept until that upstream says the list changed (or the
 * session goes away with its server): tools and prompts by name, resource URIs and templates. Calls check names and
 * route URIs against it, so nothing depends on what a client listed before.
 */
import type { UpstreamSession } from '../upstream/session.js';
import { fetchAll, type Item, type ListMethod } from './lists.js';
import type { ResourceIndex } from './routes.js';

export type IndexKind = 'tools' | 'prompts' | 'resources';

export class UpstreamIndex {
  private readonly tools = new WeakMap<UpstreamSession, Promise<Map<string, Item>>>();
  private readonly prompts = new WeakMap<UpstreamSession, Promise<Map<string, Item>>>();
  private readonly resources = new WeakMap<UpstreamSession, Promise<ResourceIndex>>();
  /** Settled resource indexes, for the synchronous routing of notifications. */
  private readonly settled = new WeakMap<UpstreamSession, ResourceIndex>();

  /**
   * `onListed` hears of each list an upstream session answered in full (its later list_changed is news); `listAll`
   * fetches every page of a list (the catalog passes one that reads the list cache first).
   */
  constructor(
    private readonly timeoutMs: () => number,
    private readonly onListed: (session: UpstreamSession, kind: IndexKind) => void = () => {},
    private readonly listAll: (session: UpstreamSession, method: ListMethod, timeoutMs: number) => Promise<Item[]> = fetchAll,
  ) {}

  toolsOf(session: UpstreamSession): Promise<Map<string, Item>> {
    return cached(this.tools, session, () => this.listed(session, 'tools', this.byName(session, 'tools/list')));
  }

  promptsOf(session: UpstreamSession): Promise<Map<string, Item>> {
    return cached(this.prompts, session, () => this.listed(session, 'prompts', this.byName(session, 'prompts/list')));
  }

  private async byName(session: UpstreamSession, method: 'tools/list' | 'prompts/list'): Promise<Map<string, Item>> {
    const index = new Map<string, Item>();
    for (const item of await this.listAll(session, method, this.timeoutMs())) if (typeof item.name === 'string') index.set(item.name, item);
    return index;
  }

  private listed<T>(session: UpstreamSession, kind: IndexKind, p: Promise<T>): Promise<T> {
    return p.then((v) => {
      this.onListed(session, kind);
      return v;
    });
  }

  resourcesOf(session: UpstreamSession): Promise<ResourceIndex> {
    const existing = this.resources.get(session);
    if (existing) return existing;
    const p = cached(this.resources, session, () => this.listed(session, 'resources', this.listResources(session)));
    // Kept for synchronous use unless the list changed again while it was being fetched.
    p.then((index) => this.resources.get(session) === p && this.settled.set(session, index), () => {});
    return p;
  }

  private async listResources(session: UpstreamSession): Promise<ResourceIndex> {
    const [resources, templates] = await Promise.all([
      this.listAll(session, 'resources/list', this.timeoutMs()),
      this.listAll(session, 'resources/templates/list', this.timeoutMs()),
    ]);
    return {
      uris: new Set(resources.flatMap((r) => (typeof r.uri === 'string' ? [r.uri] : []))),
      templates: templates.flatMap((t) => (typeof t.uriTemplate === 'string' ? [t.uriTemplate] : [])),
    };
  }

  /** The resource index of a session if it was listed already. */
  peekResources(session: UpstreamSession): ResourceIndex | undefined {
    return this.settled.get(session);
  }

  invalidate(session: UpstreamSession, kind: IndexKind): void {
    this[kind].delete(session);
    if (kind === 'resources') this.settled.delete(session);
  }
}

function cached<T>(map: WeakMap<UpstreamSession, Promise<T>>, session: UpstreamSession, load: () => Promise<T>): Promise<T> {
  let p = map.get(session);
  if (!p) {
    p = load();
    const mine = p;
    p.catch(() => {
      if (map.get(session) === mine) map.delete(session);
    });
    map.set(session, p);
  }
  return p;
}

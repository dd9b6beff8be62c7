/**
 * Upstream list pages, kept per server and per variant (what the answer depends on: the shared session, or the
 * protocol version and capabilities a client declared) until that server says the list changed, its manifest
 * changes, or no session that could hear a change is left, and for a minute at most. Only servers that promise
 * `listChanged` are cached.
 */
import type { Item, ListMethod } from './lists.js';

export type CachedKind = 'tools' | 'prompts' | 'resources';

export interface UpstreamPage {
  items: Item[];
  nextCursor?: string;
}

/** An upstream session as the cache sees it: once closed, it can no longer tell us a list changed. */
export interface Watcher {
  readonly state: string;
}

const KIND_OF: Record<ListMethod, CachedKind> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
};

interface Slot {
  kind: CachedKind;
  promise: Promise<UpstreamPage>;
  /** Set once the page arrived: the warm path reads it without waiting. */
  value?: UpstreamPage;
  /** When the page was asked for (Date.now()). */
  at: number;
}

/**
 * How long a page is kept at most, even without a list_changed: a server may declare `listChanged` and still have
 * no stream to send it on (a Streamable HTTP server that answers GET with 405), and its lists must not stay stale.
 */
export const MAX_PAGE_AGE_MS = 60_000;

interface ServerEntry {
  /** `{variant}\0{method}\0{upstream cursor}` → page. */
  pages: Map<string, Slot>;
  /** Live sessions of this server that hear its list_changed; with none left, the pages may be stale. */
  watchers: Set<Watcher>;
}

export interface CacheStats {
  hits: number;
  misses: number;
}

export class ListCache {
  private readonly servers = new Map<string, ServerEntry>();
  readonly stats: CacheStats = { hits: 0, misses: 0 };

  constructor(private readonly maxAgeMs = MAX_PAGE_AGE_MS) {}

  /**
   * The page of `method` at `cursor` ('' = first) for this server and variant, loaded through `via` when not kept.
   * A settled page comes back as a value (no promise, no wait); a failed load is not kept.
   */
  page(server: string, variant: string, method: ListMethod, cursor: string, via: Watcher, load: () => Promise<UpstreamPage>): UpstreamPage | Promise<UpstreamPage> {
    const entry = this.entryFor(server, via);
    const key = `${variant}\0${method}\0${cursor}`;
    const now = Date.now();
    const slot = entry.pages.get(key);
    if (slot && now - slot.at < this.maxAgeMs) {
      this.stats.hits++;
      return slot.value ?? slot.promise;
    }
    this.stats.misses++;
    const mine: Slot = { kind: KIND_OF[method], promise: load(), at: now };
    entry.pages.set(key, mine);
    mine.promise.then(
      (page) => {
        if (entry.pages.get(key) === mine) mine.value = page;
      },
      () => {
        if (entry.pages.get(key) === mine) entry.pages.delete(key);
      },
    );
    return mine.promise;
  }

  /** The server said a list of this kind changed (or its manifest changed): every variant lists it again. */
  invalidate(server: string, kinds: readonly CachedKind[] = ['tools', 'prompts', 'resources']): void {
    const entry = this.servers.get(server);
    if (!entry) return;
    for (const [key, slot] of entry.pages) if (kinds.includes(slot.kind)) entry.pages.delete(key);
  }

  /** The server stopped, restarted or was removed. */
  forget(server: string): void {
    this.servers.delete(server);
  }

  /** Pages kept for a server (for tests and the console). */
  size(server: string): number {
    return this.servers.get(server)?.pages.size ?? 0;
  }

  private entryFor(server: string, via: Watcher): ServerEntry {
    let entry = this.servers.get(server);
    if (!entry) {
      entry = { pages: new Map(), watchers: new Set([via]) };
      this.servers.set(server, entry);
      return entry;
    }
    if (entry.watchers.has(via)) return entry;
    // A list_changed sent while no session was open went unheard (a reconnect, or every client gone): list again.
    if (!hasLiveWatcher(entry.watchers)) entry.pages.clear();
    entry.watchers.add(via);
    return entry;
  }

  /** Sessions the cache remembers for a server (closed ones are dropped as new ones arrive). */
  watching(server: string): number {
    return this.servers.get(server)?.watchers.size ?? 0;
  }
}

/**
 * Whether any watcher is still open. Closed ones met on the way are dropped and the open one met first moves to the
 * back, so each new watcher clears out the oldest and closed sessions are not kept alive by the cache.
 */
function hasLiveWatcher(watchers: Set<Watcher>): boolean {
  const oldest: Watcher[] = [];
  for (const w of watchers) if (oldest.push(w) === 2) break;
  let live = false;
  for (const w of oldest) {
    watchers.delete(w);
    if (w.state === 'closed') continue;
    watchers.add(w);
    live = true;
  }
  if (live) return true;
  for (const w of watchers) {
    if (w.state !== 'closed') return true;
    watchers.delete(w);
  }
  return false;
}

/** What a per-client session's lists depend on: the protocol version and capabilities its client declared. */
export function clientVariant(protocolVersion: string, capabilities: Record<string, unknown>): string {
  return `${protocolVersion} ${canonicalJson(capabilities)}`;
}

export const SHARED_VARIANT = 'shared';

/** JSON with object keys sorted, so equal capabilities give equal keys whatever order a client wrote them in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .filter((k) => obj[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Merged list methods: one fan-out per page across the servers in view, each bounded by its own timeout so a
 * dead or slow upstream is skipped (and logged) instead of stalling everyone; pages a cache holds are taken without
 * waiting. The gateway cursor carries every upstream's position.
 */
import type { Logger } from 'pino';
import type { UpstreamSession } from '../upstream/session.js';
import { decodeCursor, encodeCursor, type Positions } from './cursor.js';
import type { UpstreamPage } from './list-cache.js';

export type ListMethod = 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

export const LIST_KEY: Record<ListMethod, string> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
};

const CAPABILITY: Record<ListMethod, string> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
};

export type Item = Record<string, unknown>;

export interface ListSource {
  server: string;
  /**
   * One upstream page at an upstream cursor ('' = first): a value when it is at hand (a warm cache), else a promise
   * that rejects when the server is unavailable or the page cannot be had.
   */
  page: (cursor: string) => UpstreamPage | Promise<UpstreamPage>;
}

export interface ListPage {
  items: Array<{ server: string; item: Item }>;
  nextCursor?: string;
}

export class BadCursorError extends Error {}

/** Whether a session's server has the capability a list method needs. */
export function serves(session: UpstreamSession, method: ListMethod): boolean {
  return Boolean(session.serverCapabilities[CAPABILITY[method]]);
}

/** Whether the server promised to send list_changed for this list (only then may its answers be kept). */
export function promisesListChanged(session: UpstreamSession, method: ListMethod): boolean {
  const cap = session.serverCapabilities[CAPABILITY[method]] as { listChanged?: unknown } | undefined;
  return cap?.listChanged === true;
}

/** One page of one upstream list. */
export async function requestPage(session: UpstreamSession, method: ListMethod, cursor: string, timeoutMs: number): Promise<UpstreamPage> {
  if (!serves(session, method)) return { items: [] };
  const res = await session.request(method, cursor ? { cursor } : {}, { timeoutMs });
  if (res.error) throw new Error(`${res.error.message} (${res.error.code})`);
  const result = (res.result ?? {}) as Record<string, unknown>;
  const key = LIST_KEY[method];
  const items = Array.isArray(result[key]) ? (result[key] as Item[]) : [];
  return typeof result.nextCursor === 'string' && result.nextCursor ? { items, nextCursor: result.nextCursor } : { items };
}

/**
 * One merged page: one page of each upstream still in the cursor. Pages at hand are taken as they are; the others
 * are awaited together, each within `timeoutMs`, and a server that fails or is late is skipped and logged.
 */
export async function fetchMergedPage(method: ListMethod, sources: ListSource[], cursor: string | undefined, timeoutMs: number, log: Logger): Promise<ListPage> {
  let positions: Positions;
  if (cursor === undefined) {
    positions = {};
    for (const s of sources) positions[s.server] = '';
  } else {
    const decoded = decodeCursor(cursor);
    if (!decoded) throw new BadCursorError('Invalid cursor: pass back a nextCursor this gateway returned, or omit it for the first page.');
    positions = decoded;
  }
  const bySource = new Map(sources.map((s) => [s.server, s]));
  const servers = Object.keys(positions);
  const pages: Array<UpstreamPage | Promise<UpstreamPage>> = new Array(servers.length);
  let waiting = false;
  const skipped = (server: string, err: unknown): UpstreamPage => {
    log.warn({ server, method, err: (err as Error).message }, 'upstream skipped in merged list');
    return { items: [] };
  };
  servers.forEach((server, i) => {
    const src = bySource.get(server);
    if (!src) return void (pages[i] = { items: [] }); // removed since the cursor was made
    try {
      const p = src.page(positions[server]!);
      if (p instanceof Promise) {
        waiting = true;
        pages[i] = withTimeout(p, timeoutMs).catch((err: unknown) => skipped(server, err));
      } else pages[i] = p;
    } catch (err) {
      pages[i] = skipped(server, err);
    }
  });
  const settled = waiting ? await Promise.all(pages) : (pages as UpstreamPage[]);
  const items: ListPage['items'] = [];
  const next: Positions = {};
  settled.forEach((page, i) => {
    const server = servers[i]!;
    for (const item of page.items) items.push({ server, item });
    if (page.nextCursor) next[server] = page.nextCursor;
  });
  return { items, nextCursor: encodeCursor(next) };
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Every page of one upstream list (up to 1000 pages), for the call-time indexes. */
export async function fetchAll(session: UpstreamSession, method: ListMethod, timeoutMs: number): Promise<Item[]> {
  const out: Item[] = [];
  if (!session.serverCapabilities[CAPABILITY[method]]) return out;
  const key = LIST_KEY[method];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const res = await session.request(method, cursor ? { cursor } : {}, { timeoutMs });
    if (res.error) throw new Error(res.error.message);
    const r = (res.result ?? {}) as Record<string, unknown>;
    if (Array.isArray(r[key])) out.push(...(r[key] as Item[]));
    if (typeof r.nextCursor !== 'string' || !r.nextCursor) break;
    cursor = r.nextCursor;
  }
  return out;
}

/**
 * Merged list methods: one fan-out per page across the servers in view, each bounded by its own timeout so a
 * dead or slow upstream is skipped (and logged) instead of stalling everyone. The gateway cursor carries every
 * upstream's position.
 */
import type { Logger } from 'pino';
import type { UpstreamSession } from '../upstream/session.js';
import { decodeCursor, encodeCursor, type Positions } from './cursor.js';

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
  /** Resolves the upstream session for this client; rejects when the server is unavailable. */
  session: () => Promise<UpstreamSession>;
}

export interface ListPage {
  items: Array<{ server: string; item: Item }>;
  nextCursor?: string;
}

export class BadCursorError extends Error {}

export async function fetchMergedPage(
  method: ListMethod,
  sources: ListSource[],
  cursor: string | undefined,
  timeoutMs: number,
  log: Logger,
  extraParams?: Record<string, unknown>,
): Promise<ListPage> {
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
  const key = LIST_KEY[method];
  const next: Positions = {};
  const pages = await Promise.all(
    Object.entries(positions).map(async ([server, upstreamCursor]) => {
      const src = bySource.get(server);
      if (!src) return { server, items: [] as Item[] }; // removed since the cursor was made
      try {
        const result = await withTimeout(
          (async () => {
            const session = await src.session();
            if (!session.serverCapabilities[CAPABILITY[method]]) return { [key]: [] } as Record<string, unknown>;
            const params: Record<string, unknown> = { ...extraParams };
            if (upstreamCursor) params.cursor = upstreamCursor;
            const res = await session.request(method, params, { timeoutMs });
            if (res.error) throw new Error(`${res.error.message} (${res.error.code})`);
            return (res.result ?? {}) as Record<string, unknown>;
          })(),
          timeoutMs,
        );
        const items = Array.isArray(result[key]) ? (result[key] as Item[]) : [];
        if (typeof result.nextCursor === 'string' && result.nextCursor) next[server] = result.nextCursor;
        return { server, items };
      } catch (err) {
        log.warn({ server, method, err: (err as Error).message }, 'upstream skipped in merged list');
        return { server, items: [] as Item[] };
      }
    }),
  );
  const items: ListPage['items'] = [];
  for (const p of pages) for (const item of p.items) items.push({ server: p.server, item });
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

/** All pages of one upstream's tools or prompts, by name. */
export async function fetchByName(session: UpstreamSession, method: 'tools/list' | 'prompts/list', timeoutMs: number): Promise<Map<string, Item>> {
  const index = new Map<string, Item>();
  for (const item of await fetchAll(session, method, timeoutMs)) if (typeof item.name === 'string') index.set(item.name, item);
  return index;
}

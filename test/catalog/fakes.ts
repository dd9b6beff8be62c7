// In-memory upstream sessions and client views for the catalog's unit tests: no process, no transport.
import { pino } from 'pino';
import { Catalog } from '../../src/catalog/catalog.js';
import { allowAll, type Access } from '../../src/catalog/access.js';
import { clientVariant, SHARED_VARIANT } from '../../src/catalog/list-cache.js';
import type { ViewSource } from '../../src/catalog/view.js';
import type { ServerManifest } from '../../src/config/types.js';
import type { UpstreamSession } from '../../src/upstream/session.js';

export type Lists = Record<string, Record<string, unknown>>; // 'tools/list' or 'tools/list@cursor' → result

export interface FakeSession {
  session: UpstreamSession;
  /** Every request, as `method` or `method@cursor`. */
  calls: string[];
  lists: Lists;
  close(): void;
}

/** An upstream session answering lists from `lists`; `hang` leaves every request unanswered. */
export function fakeSession(lists: Lists, opts: { listChanged?: boolean; hang?: boolean } = {}): FakeSession {
  const calls: string[] = [];
  const cap = opts.listChanged === false ? {} : { listChanged: true };
  const fake = {
    state: 'ready',
    serverCapabilities: { tools: cap, prompts: cap, resources: cap },
    request: (method: string, params: { cursor?: string } = {}) => {
      calls.push(`${method}${params.cursor ? `@${params.cursor}` : ''}`);
      if (opts.hang) return new Promise(() => {});
      const result = lists[params.cursor ? `${method}@${params.cursor}` : method] ?? {};
      return Promise.resolve({ jsonrpc: '2.0', id: 1, result });
    },
  };
  return { session: fake as unknown as UpstreamSession, calls, lists, close: () => void (fake.state = 'closed') };
}

export function manifest(name: string, tools: { include?: string[]; exclude?: string[] } = {}): ServerManifest {
  return { name, transport: 'http', url: 'http://127.0.0.1:1/mcp', tools: { include: tools.include ?? ['*'], exclude: tools.exclude ?? [] } } as unknown as ServerManifest;
}

export function catalogOf(manifests: ServerManifest[], listTimeoutMs = 1000): Catalog {
  const catalog = new Catalog({ log: pino({ level: 'silent' }), listTimeoutMs: () => listTimeoutMs });
  for (const m of manifests) catalog.configure(m);
  catalog.applyOrder(manifests.map((m) => m.name));
  return catalog;
}

export interface FakeClient {
  sessions: Record<string, FakeSession>;
  access?: Access;
  single?: string;
  /** Servers whose session is shared by every client. */
  shared?: string[];
  capabilities?: Record<string, unknown>;
  protocolVersion?: string;
}

/** The view a client of these sessions has; a server without a session is unavailable to it. */
export function viewOf(client: FakeClient): ViewSource {
  const servers = Object.keys(client.sessions).filter((s) => client.single === undefined || s === client.single);
  const live = (server: string) => {
    const s = client.sessions[server]?.session;
    return s && s.state === 'ready' ? s : undefined;
  };
  return {
    single: client.single,
    access: client.access ?? allowAll,
    servers,
    peek: live,
    session: (server) => {
      const s = live(server);
      return s ? Promise.resolve(s) : Promise.reject(new Error(`${server} is down`));
    },
    variant: (server) => (client.shared?.includes(server) ? SHARED_VARIANT : clientVariant(client.protocolVersion ?? '2025-11-25', client.capabilities ?? {})),
  };
}

export const names = (result: Record<string, unknown>, key = 'tools'): string[] =>
  (result[key] as Array<Record<string, unknown>>).map((i) => String(i.name ?? i.uri ?? i.uriTemplate));

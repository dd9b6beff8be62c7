/**
 * Resource routes and qualification, decided from the configured servers and their own lists, never from what a
 * client happened to list before. Servers are ranked in configuration order (servers.d file-name order, then entry
 * order within a file); a server added while the gateway runs ranks after every server already running, and a
 * changed manifest keeps its rank. A URI or template that several servers expose stays plain for the best-ranked
 * of them and is qualified `switchyard+{server}:{uri}` for the others.
 */
import { qualifyUri } from './naming.js';

/** What one upstream serves, from its complete resources/list and resources/templates/list. */
export interface ResourceIndex {
  uris: ReadonlySet<string>;
  templates: readonly string[];
}

export const EMPTY_INDEX: ResourceIndex = Object.freeze({ uris: new Set<string>(), templates: [] });

/** Configuration rank of each server. */
export class ServerOrder {
  private readonly rank = new Map<string, number>();
  private nextRank = 0;

  /** Apply the configured servers in their configuration order: kept servers keep their rank, new ones rank last. */
  apply(servers: Iterable<string>): void {
    const next = new Set(servers);
    for (const name of this.rank.keys()) if (!next.has(name)) this.rank.delete(name);
    for (const name of next) if (!this.rank.has(name)) this.rank.set(name, this.nextRank++);
  }

  rankOf(server: string): number {
    return this.rank.get(server) ?? Number.MAX_SAFE_INTEGER;
  }

  /** The given servers sorted best rank first. */
  sort(servers: readonly string[]): string[] {
    return [...servers].sort((a, b) => this.rankOf(a) - this.rankOf(b));
  }
}

/** The servers in view, best rank first, each with its resource index (EMPTY_INDEX when it could not be listed). */
export type RankedIndexes = ReadonlyArray<{ server: string; index: ResourceIndex }>;

/**
 * How well a URI matches an RFC 6570 template: the length of the template's literal text when it matches, else -1.
 * Simple expressions match one path segment; `{+x}` and `{#x}` match anything; `{/x}`, `{?x}`, `{&x}`, `{.x}` and
 * `{;x}` match their optional expansions.
 */
export function templateScore(template: string, uri: string): number {
  let re = '^';
  let literal = 0;
  for (const part of template.split(/(\{[^}]*\})/)) {
    if (!part) continue;
    if (!part.startsWith('{')) {
      re += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      literal += part.length;
      continue;
    }
    const op = part[1];
    if (op === '+' || op === '#') re += '.*';
    else if (op === '/') re += '(?:/[^?#]*)?';
    else if (op === '?' || op === '&') re += '(?:[?&][^#]*)?';
    else if (op === '.') re += '(?:\\.[^/?#]*)?';
    else if (op === ';') re += '(?:;[^/?#]*)?';
    else re += '[^/?#]*';
  }
  return literal > 0 && new RegExp(`${re}$`, 's').test(uri) ? literal : -1;
}

/**
 * The server that serves a plain URI: the best-ranked one that lists it, else the one whose template matches it with
 * the most literal text (rank breaks ties), else the only server in view.
 */
export function ownerOf(ranked: RankedIndexes, uri: string): string | undefined {
  for (const { server, index } of ranked) if (index.uris.has(uri)) return server;
  let best: { server: string; score: number } | undefined;
  for (const { server, index } of ranked) {
    for (const t of index.templates) {
      const score = t === uri ? Number.MAX_SAFE_INTEGER : templateScore(t, uri);
      if (score >= 0 && (!best || score > best.score)) best = { server, score };
    }
  }
  if (best) return best.server;
  return ranked.length === 1 ? ranked[0]!.server : undefined;
}

/** How a server's URI or template is shown: plain unless a better-ranked server in view exposes the same one. */
export function exposeUri(ranked: RankedIndexes, server: string, uri: string, kind: 'uri' | 'template'): string {
  for (const r of ranked) {
    if (r.server === server) return uri;
    if (kind === 'uri' ? r.index.uris.has(uri) : r.index.templates.includes(uri)) return qualifyUri(server, uri);
  }
  return uri;
}

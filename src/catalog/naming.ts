/**
 * Namespaced names: `{server}__{name}` within ^[A-Za-z0-9_-]{1,64}$. Names that would break the pattern are
 * sanitized and shortened deterministically (a hash of the original keeps them unique); the reverse map
 * routes calls back. Server names cannot contain '_', so the first '__' always splits a plain name.
 */
import { createHash } from 'node:crypto';

export const SEPARATOR = '__';
const MAX_NAME = 64;
const VALID = /^[A-Za-z0-9_-]{1,64}$/;

export interface QualifiedName {
  server: string;
  name: string;
}

export class NameTable {
  /** exposed → original, for names that could not be exposed as-is. */
  private readonly shortened = new Map<string, QualifiedName>();

  expose(server: string, name: string): string {
    const plain = `${server}${SEPARATOR}${name}`;
    if (VALID.test(plain)) return plain;
    const exposed = shortenName(server, name);
    this.shortened.set(exposed, { server, name });
    return exposed;
  }

  resolve(exposed: string): QualifiedName | undefined {
    const short = this.shortened.get(exposed);
    if (short) return short;
    const i = exposed.indexOf(SEPARATOR);
    if (i <= 0) return undefined;
    return { server: exposed.slice(0, i), name: exposed.slice(i + SEPARATOR.length) };
  }

  /**
   * The upstream name behind an exposed name, among the names a server lists now: the name itself, or the one whose
   * shortened form it is (names are deterministic, so clients keep them across restarts without listing again).
   */
  find<T>(server: string, exposed: string, upstreamName: string, listed: ReadonlyMap<string, T>): string | undefined {
    if (listed.has(upstreamName)) return upstreamName;
    if (!mayBeShortened(exposed)) return undefined;
    for (const name of listed.keys()) if (this.expose(server, name) === exposed) return name;
    return undefined;
  }

  /** Forget the shortened names of a server that was removed or changed. */
  forgetServer(server: string): void {
    for (const [k, v] of this.shortened) if (v.server === server) this.shortened.delete(k);
  }
}

/** Whether an upstream-side name could be the tail of a shortened name (`…_` + 8 hex digits of the hash). */
export function mayBeShortened(name: string): boolean {
  return /_[0-9a-f]{8}$/.test(name);
}

/** Deterministic: the same (server, name) always yields the same exposed name. */
export function shortenName(server: string, name: string): string {
  const hash = createHash('sha256').update(`${server}\0${name}`).digest('hex').slice(0, 8);
  const clean = name.replace(/[^A-Za-z0-9_-]/g, '_');
  const room = MAX_NAME - server.length - SEPARATOR.length - hash.length - 1;
  return `${server}${SEPARATOR}${clean.slice(0, Math.max(0, room))}_${hash}`;
}

/**
 * A resource URI (or template) that two servers both expose is shown unchanged for the better-ranked server
 * (routes.ts) and as `switchyard+{server}:{uri}` for the others, so every copy stays readable and routes to its own server.
 */
const QUALIFIED_URI = /^switchyard\+([a-z0-9][a-z0-9-]{0,31}):(.+)$/s;

export function qualifyUri(server: string, uri: string): string {
  return `switchyard+${server}:${uri}`;
}

export function parseQualifiedUri(exposed: string): { server: string; uri: string } | undefined {
  const m = QUALIFIED_URI.exec(exposed);
  return m ? { server: m[1]!, uri: m[2]! } : undefined;
}

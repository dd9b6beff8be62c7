/** One client's view of the catalog, as the gateway hands it over: what is in view and how each server is reached. */
import type { UpstreamSession } from '../upstream/session.js';
import { reaches, type Access } from './access.js';

export interface ViewSource {
  /** Set for /servers/{name}/mcp: one upstream, names unprefixed. */
  readonly single?: string;
  readonly access: Access;
  /** Servers in view: configured, and with something the caller's policy may show. */
  readonly servers: readonly string[];
  /** The client's session with a server, opened on first use; rejects when the server is unavailable. */
  session(server: string): Promise<UpstreamSession>;
  /** The client's live session with a server, without opening one. */
  peek(server: string): UpstreamSession | undefined;
  /** What a server's answers to lists depend on for this client: the list cache keeps one answer per variant. */
  variant(server: string): string;
}

/** The configured servers a caller can reach in a view (the single server alone, or every reachable one). */
export function serversInView(configured: Iterable<string>, access: Access, single?: string): string[] {
  const out: string[] = [];
  if (single !== undefined) {
    for (const name of configured) if (name === single && reaches(access, name)) out.push(name);
    return out;
  }
  for (const name of configured) if (reaches(access, name)) out.push(name);
  return out;
}

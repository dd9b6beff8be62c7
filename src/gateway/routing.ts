/**
 * Where a client's tool or prompt name, resource URI or template goes: the catalog's routing table for the client's
 * view decides, from the upstreams' own lists and the configuration rank of the servers in view.
 */
import { resolveNameIn, type NameTarget, type PromptTarget, type ResourceTarget, type RoutingTable } from '../catalog/routing-table.js';
import type { ClientSession } from './client-session.js';
import type { Gateway } from './gateway.js';

export type { NameTarget, PromptTarget, ResourceTarget };

/** The routing table of this session's view (`/mcp` federated, or one server alone). */
export function routesOf(gw: Gateway, cs: ClientSession): RoutingTable {
  return gw.catalog.routes(gw.viewOf(cs));
}

/** The server and upstream name behind a tool or prompt name as the client wrote it, before any upstream is asked. */
export function resolveName(gw: Gateway, cs: ClientSession, name: string): NameTarget | undefined {
  return resolveNameIn(gw.catalog, cs.view.single, name);
}

/** The server and upstream URI behind a URI as the client wrote it (plain, or qualified when servers share it). */
export function resolveResource(gw: Gateway, cs: ClientSession, exposed: string): Promise<ResourceTarget | undefined> {
  return routesOf(gw, cs).resolveResource(exposed);
}

/**
 * The prompt behind a name as the client wrote it, checked against the upstream's own prompts list; undefined for a
 * name the upstream does not have. Throws when the upstream cannot be reached or listed.
 */
export function resolvePrompt(gw: Gateway, cs: ClientSession, name: string): Promise<PromptTarget | undefined> {
  return routesOf(gw, cs).resolvePrompt(name);
}

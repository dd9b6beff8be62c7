/**
 * One merge per list method: the upstreams' items of one merged page become what this caller is shown, with the
 * manifest's tool filters and the caller's access applied inside the merge and names and URIs as the view shows them.
 */
import type { Access } from './access.js';
import type { Item, ListMethod } from './lists.js';
import type { RoutingTable } from './routing-table.js';

export type ServerItems = ReadonlyArray<{ server: string; item: Item }>;

export interface MergeScope {
  access: Access;
  routes: RoutingTable;
  /** The manifest's tools.include / tools.exclude, on upstream names. */
  toolAllowed(server: string, name: string): boolean;
}

export type Merge = (items: ServerItems, scope: MergeScope) => Item[] | Promise<Item[]>;

export function mergeTools(items: ServerItems, { access, routes, toolAllowed }: MergeScope): Item[] {
  const out: Item[] = [];
  for (const { server, item } of items) {
    const name = String(item.name);
    if (!toolAllowed(server, name) || !access.tool(routes.policyName(server, name))) continue;
    const shown = routes.showName(server, name);
    out.push(shown === name ? item : { ...item, name: shown });
  }
  return out;
}

export function mergePrompts(items: ServerItems, { access, routes }: MergeScope): Item[] {
  const out: Item[] = [];
  for (const { server, item } of items) {
    const name = String(item.name);
    if (!access.prompt(routes.policyName(server, name))) continue;
    const shown = routes.showName(server, name);
    out.push(shown === name ? item : { ...item, name: shown });
  }
  return out;
}

export async function mergeResources(items: ServerItems, { access, routes }: MergeScope): Promise<Item[]> {
  const expose = await routes.uriExposer();
  const out: Item[] = [];
  for (const { server, item } of items) {
    const uri = String(item.uri);
    if (!access.resource(server, uri)) continue;
    const shown = expose(server, uri, 'uri');
    out.push(shown === uri ? item : { ...item, uri: shown });
  }
  return out;
}

export async function mergeResourceTemplates(items: ServerItems, { access, routes }: MergeScope): Promise<Item[]> {
  const expose = await routes.uriExposer();
  const out: Item[] = [];
  for (const { server, item } of items) {
    const template = String(item.uriTemplate);
    if (!access.resource(server, template)) continue;
    const shown = expose(server, template, 'template');
    out.push(shown === template ? item : { ...item, uriTemplate: shown });
  }
  return out;
}

export const MERGE: Record<ListMethod, Merge> = {
  'tools/list': mergeTools,
  'prompts/list': mergePrompts,
  'resources/list': mergeResources,
  'resources/templates/list': mergeResourceTemplates,
};

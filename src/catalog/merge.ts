/**
 * One merge per list method: the upstreams' items of one merged page become what this caller is shown, with the
 * manifest's tool filters and the caller's access applied inside the merge and names and URIs as the view shows them.
 */
import type { Access } from './access.js';
import type { Item, ListMethod } from './lists.js';
import { SEPARATOR } from './naming.js';
import type { RoutingTable } from './routing-table.js';

export type ServerItems = ReadonlyArray<{ server: string; item: Item }>;

export interface MergeScope {
  access: Access;
  routes: RoutingTable;
  /** The manifest's tools.include / tools.exclude, on upstream names. */
  toolAllowed(server: string, name: string): boolean;
}

export type Merge = (items: ServerItems, scope: MergeScope) => Item[] | Promise<Item[]>;

/**
 * A listed tool's or prompt's names, worked out once per item: the namespaced name policies decide on, and the copy
 * of the item that carries it. Items are the list cache's, never changed in place, so both live as long as it keeps
 * the item, and a warm list neither renames nor copies (and its reply serializes each copy once, see raw-response.ts).
 */
interface Named {
  server: string;
  policy: string;
  /** Whether `policy` is `{server}__{name}`, not a shortened name (whose table entry expose() must keep renewing). */
  plain: boolean;
  namespaced?: Item;
}
const namedItems = new WeakMap<Item, Named>();

function named(server: string, name: string, item: Item, routes: RoutingTable): Named {
  let n = namedItems.get(item);
  if (n?.server === server && n.plain) return n;
  const policy = routes.policyName(server, name);
  n = { server, policy, plain: policy.length === server.length + SEPARATOR.length + name.length };
  namedItems.set(item, n);
  return n;
}

/** The item as the view shows it: its own for a single-server view, the namespaced copy in the federated one. */
function shown(server: string, name: string, item: Item, n: Named, routes: RoutingTable): Item {
  if (!routes.namespaced) {
    const own = routes.showName(server, name);
    return own === name ? item : { ...item, name: own };
  }
  if (n.policy === name) return item;
  return (n.namespaced ??= { ...item, name: n.policy });
}

export function mergeTools(items: ServerItems, { access, routes, toolAllowed }: MergeScope): Item[] {
  const out: Item[] = [];
  for (const { server, item } of items) {
    const name = String(item.name);
    if (!toolAllowed(server, name)) continue;
    const n = named(server, name, item, routes);
    if (access.tool(n.policy)) out.push(shown(server, name, item, n, routes));
  }
  return out;
}

export function mergePrompts(items: ServerItems, { access, routes }: MergeScope): Item[] {
  const out: Item[] = [];
  for (const { server, item } of items) {
    const name = String(item.name);
    const n = named(server, name, item, routes);
    if (access.prompt(n.policy)) out.push(shown(server, name, item, n, routes));
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

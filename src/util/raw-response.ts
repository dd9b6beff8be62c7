/**
 * A response relayed as the upstream wrote it, with only the id swapped: its wire text is kept beside the parsed
 * result, so a large result is not serialized again on the way out. Anything that builds a new result (the 2026-07-28
 * decoration, list merges) or a new envelope (an error with the workflow id) simply has no text and is serialized.
 * Results are never changed in place on the relay path; a change must build a new object, as every one does today.
 */
import type { RpcId, RpcMessage, RpcResponse } from './jsonrpc.js';

interface Wire {
  text: string;
  /** The id as it stands in `text`. */
  id: RpcId;
}

/** Keyed by the parsed result object: `{ ...res, id }` keeps it, so the text follows the response through the gateway. */
const wireOf = new WeakMap<object, Wire>();

/** Whether `msg` has exactly the envelope of a result (no error, no fields beyond jsonrpc, id and result). */
function plainResult(msg: RpcMessage): msg is RpcResponse & { result: object } {
  const m = msg as RpcResponse;
  if (typeof m.result !== 'object' || m.result === null || m.error !== undefined || m.jsonrpc !== '2.0') return false;
  let keys = 0;
  for (const _ in m) keys++;
  return keys === 3;
}

/** Remember the text a response was parsed from (as one JSON text: an SSE event's data or a JSON body). */
export function keepWire(msg: RpcMessage, text: string): void {
  const id = (msg as RpcResponse).id;
  if ((typeof id === 'number' || typeof id === 'string') && plainResult(msg)) wireOf.set(msg.result, { text, id });
}

/**
 * The upstream's text of `msg` with `msg.id` in place of the upstream's id, or undefined when the response is not the
 * one that arrived (another result, extra fields, an error) or its text is not in the compact form JSON.stringify
 * writes (the id first or last, no whitespace around it). `oneLine`: the text must fit one SSE data line.
 */
export function wireWithId(msg: RpcResponse, oneLine = false): string | undefined {
  if (!plainResult(msg)) return undefined;
  if (msg.id !== null && typeof msg.id !== 'number' && typeof msg.id !== 'string') return undefined;
  const wire = wireOf.get(msg.result);
  if (!wire) {
    // JSON.stringify writes no raw line breaks, so a list's text always fits one SSE data line.
    const list = listText(msg.result);
    return list === undefined ? undefined : `{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":${list}}`;
  }
  const { text } = wire;
  if (oneLine && (text.includes('\n') || text.includes('\r'))) return undefined;
  const was = JSON.stringify(wire.id);
  const now = JSON.stringify(msg.id);
  // The text's last `}` closes the top-level object, so a member just before it is a top-level member.
  const tail = `,"id":${was}}`;
  if (text.endsWith(tail)) return `${text.slice(0, text.length - tail.length)},"id":${now}}`;
  const head = `{"jsonrpc":"2.0","id":${was},`;
  if (text.startsWith(head)) return `{"jsonrpc":"2.0","id":${now},${text.slice(head.length)}`;
  return undefined;
}

/** Merged list results (by result object), with the member that holds their items. */
const listKeyOf = new WeakMap<object, string>();
/** Each list item's JSON text, written at its first list: items are never changed in place, so it stays true. */
const itemText = new WeakMap<object, string>();

/**
 * Mark a merged list result (`{ [key]: items, nextCursor? }`, made for this reply) so its reply is written from each
 * item's kept text: a warm list of thousands of cached items then costs a join, not a serialization of all of them.
 */
export function markList(result: Record<string, unknown>, key: string): void {
  listKeyOf.set(result, key);
}

/** The JSON text of a marked list result, as JSON.stringify would write it; undefined when it is not one, or has changed shape. */
function listText(result: object): string | undefined {
  const key = listKeyOf.get(result);
  if (key === undefined) return undefined;
  const r = result as Record<string, unknown>;
  const items = r[key];
  if (!Array.isArray(items)) return undefined;
  let members = 0;
  for (const k in r) {
    members++;
    if (k !== key && !(k === 'nextCursor' && typeof r.nextCursor === 'string')) return undefined;
  }
  const parts = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i];
    if (typeof item !== 'object' || item === null) {
      parts[i] = JSON.stringify(item) ?? 'null';
      continue;
    }
    let text = itemText.get(item);
    if (text === undefined) itemText.set(item, (text = JSON.stringify(item)));
    parts[i] = text;
  }
  let text = `{${JSON.stringify(key)}:[${parts.join(',')}]`;
  if (members > 1) text += `,"nextCursor":${JSON.stringify(r.nextCursor)}`;
  return `${text}}`;
}

/** JSON-RPC 2.0 message shapes as the relay sees them: data to route, not objects to re-model. */
import { JSONRPCErrorCode, createJSONRPCErrorResponse, type JSONRPCError } from 'json-rpc-2.0';

export type RpcId = string | number;
export type Params = Record<string, unknown>;

export interface RpcRequest { jsonrpc: '2.0'; id: RpcId; method: string; params?: Params }
export interface RpcNotification { jsonrpc: '2.0'; method: string; params?: Params }
export interface RpcResponse { jsonrpc: '2.0'; id: RpcId | null; result?: unknown; error?: JSONRPCError }
export type RpcMessage = RpcRequest | RpcNotification | RpcResponse;

export { JSONRPCErrorCode as RpcErrorCode };

/** JSON-RPC error code of every answer the gateway gives in place of the upstream's (SPEC §7). */
export const REFUSAL_CODE = -32030;
/** MCP: resource not found. */
export const RESOURCE_NOT_FOUND = -32002;
/** MCP: request cancelled (SDK convention). */
export const REQUEST_CANCELLED = -32800;

export const isRequest = (m: RpcMessage): m is RpcRequest =>
  typeof (m as RpcRequest).method === 'string' && (m as RpcRequest).id !== undefined && (m as RpcRequest).id !== null;
export const isNotification = (m: RpcMessage): m is RpcNotification =>
  typeof (m as RpcNotification).method === 'string' && (m as RpcRequest).id === undefined;
export const isResponse = (m: RpcMessage): m is RpcResponse =>
  (m as RpcRequest).method === undefined && ('result' in m || 'error' in m);

export function errorResponse(id: RpcId | null, code: number, message: string, data?: unknown): RpcResponse {
  return createJSONRPCErrorResponse(id, code, message, data) as RpcResponse;
}

export function resultResponse(id: RpcId | null, result: unknown): RpcResponse {
  return { jsonrpc: '2.0', id, result };
}

/** Validate the envelope of a parsed body; returns a message or an error text. */
export function checkEnvelope(value: unknown): RpcMessage | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected one JSON-RPC message object';
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
  if (m.method !== undefined) {
    if (typeof m.method !== 'string') return 'method must be a string';
    if (m.id !== undefined && typeof m.id !== 'string' && typeof m.id !== 'number') return 'id must be a string or a number';
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null)) return 'params must be an object';
    return value as RpcMessage;
  }
  if ('result' in m || 'error' in m) {
    if (typeof m.id !== 'string' && typeof m.id !== 'number') return 'a response needs the id of the request it answers';
    return value as RpcMessage;
  }
  return 'not a JSON-RPC request, notification or response';
}

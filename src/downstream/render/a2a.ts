/**
 * A2A JSON-RPC rendering of refusals: the same error object as MCP's (code -32030, the reason in error.data) in a
 * 200 answer, so an agent calling over A2A reads the reason where an MCP client does.
 */
import type { Refusal } from '../../gateway/types.js';
import { errorResponse, REFUSAL_CODE, RpcErrorCode, type RpcId, type RpcResponse } from '../../util/jsonrpc.js';
import type { RefusalRenderer } from './renderer.js';

export interface A2aAnswerTo {
  id: RpcId | null;
  workflowId?: string;
}

export interface A2aRefusalAnswer {
  /** HTTP status of the reply: A2A carries refusals as JSON-RPC errors. */
  status: number;
  body: RpcResponse;
}

export const a2aRefusals: RefusalRenderer<A2aRefusalAnswer, A2aAnswerTo> = {
  render(refusal: Refusal, at: A2aAnswerTo): A2aRefusalAnswer {
    if (refusal.asUnknown) return { status: 200, body: errorResponse(at.id, RpcErrorCode.InvalidParams, refusal.message) };
    const body = errorResponse(at.id, REFUSAL_CODE, refusal.message, { reason: refusal.reason, ...(at.workflowId ? { workflowId: at.workflowId } : {}), ...refusal.data });
    return { status: 200, body };
  },
};

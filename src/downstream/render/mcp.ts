/** MCP JSON-RPC rendering of refusals (SPEC §7): code -32030 with the reason in error.data; hidden names look unknown. */
import type { Refusal } from '../../gateway/types.js';
import { errorResponse, REFUSAL_CODE, RpcErrorCode, type RpcId, type RpcResponse } from '../../util/jsonrpc.js';
import type { RefusalRenderer } from './renderer.js';

export interface McpAnswerTo {
  /** The request being answered (null when it could not be read). */
  id: RpcId | null;
  /** Added to error.data so the caller can name the workflow to an admin. */
  workflowId?: string;
}

export const mcpRefusals: RefusalRenderer<RpcResponse, McpAnswerTo> = {
  render(refusal: Refusal, at: McpAnswerTo): RpcResponse {
    if (refusal.asUnknown) return errorResponse(at.id, RpcErrorCode.InvalidParams, refusal.message);
    return errorResponse(at.id, REFUSAL_CODE, refusal.message, { reason: refusal.reason, ...(at.workflowId ? { workflowId: at.workflowId } : {}), ...refusal.data });
  },
};

/** Shorthand for `mcpRefusals.render(refusal, { id, workflowId })`. */
export function refusalResponse(id: RpcId | null, refusal: Refusal, workflowId?: string): RpcResponse {
  return mcpRefusals.render(refusal, { id, workflowId });
}

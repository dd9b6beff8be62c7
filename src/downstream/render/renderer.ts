/**
 * A refusal is a value (src/gateway/types.ts); each wire renders it in its own format. One renderer per wire: MCP
 * JSON-RPC (mcp.ts), A2A JSON-RPC (a2a.ts), and the model routes' OpenAI and Anthropic error bodies next.
 */
import type { Refusal } from '../../gateway/types.js';

/** Renders a refusal for one wire; `At` is what the answer needs besides the refusal (request id, workflow). */
export interface RefusalRenderer<Out, At> {
  render(refusal: Refusal, at: At): Out;
}

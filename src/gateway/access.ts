/** What a caller may see: the list filter the catalog applies. The policy room compiles these per agent. */
import type { Caller } from './types.js';

export interface Access {
  tool(exposedName: string): boolean;
  prompt(exposedName: string): boolean;
  resource(server: string, uri: string): boolean;
}

export const allowAll: Access = { tool: () => true, prompt: () => true, resource: () => true };

export type AccessResolver = (caller: Caller) => Access;

/** What a caller may see: the filter every list merge and route applies. The policy room compiles these per agent. */

export interface Access {
  tool(exposedName: string): boolean;
  prompt(exposedName: string): boolean;
  resource(server: string, uri: string): boolean;
  /** Whether the caller may see anything of a server (tools, prompts or resources); absent means yes. */
  server?(server: string): boolean;
}

export const allowAll: Access = { tool: () => true, prompt: () => true, resource: () => true, server: () => true };

/** A server is in a caller's reach when its policy may show anything of it: only then is an upstream session opened. */
export function reaches(access: Access, server: string): boolean {
  return access.server ? access.server(server) : true;
}

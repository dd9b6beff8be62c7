/** zod schema of one servers.d entry as written (before defaults and transport inference). Mirrored by schema/server-manifest.schema.json. */
import { z } from 'zod';
import { NAME_PATTERN, NAME_RULE } from './problems.js';
import { flag, positive } from './zod-fields.js';

/** YAML turns `PORT: 8080` into a number; environment values and headers are strings, so accept scalars and stringify. */
export const scalarString = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));
const stringMap = z.record(scalarString);
const globList = z.array(z.string().min(1, 'an empty pattern matches nothing; remove it'));

export const TRANSPORTS = ['stdio', 'http', 'sse', 'a2a'] as const;

export const serverManifestSchema = z
  .object({
    name: z.string().regex(NAME_PATTERN, `name must use ${NAME_RULE}`).optional(),
    transport: z.enum(TRANSPORTS).optional(),
    command: z.string().min(1, 'command is empty; give the program to start, e.g. node').optional(),
    args: z.array(scalarString).optional(),
    env: stringMap.optional(),
    /** stdio: a dotenv file (relative to the manifest's folder) merged under `env`. */
    envFile: z.string().min(1, "envFile is empty; give a path such as ./.env").optional(),
    cwd: z.string().min(1).optional(),
    url: z.string().min(1).optional(),
    headers: stringMap.optional(),
    tools: z
      .object({
        include: globList.default(['*']),
        exclude: globList.default([]),
      })
      .strict()
      .optional(),
    timeoutMs: positive().optional(),
    connectTimeoutMs: positive().optional(),
    idleSeconds: positive().optional(),
    breaker: z.object({ failures: positive().optional(), cooldownSeconds: positive().optional() }).strict().optional(),
    session: z.enum(['per-client', 'shared']).optional(),
    required: flag().optional(),
    identity: z.literal('jwt').optional(),
    /** http: the MCP revision spoken to the upstream (auto, the default: server/discover first, else initialize). */
    protocol: z.enum(['auto', '2025-11-25', '2026-07-28']).optional(),
    allowOrigins: z.array(z.string().url('each allowOrigins entry is an origin such as https://agents.example.com')).optional(),
  })
  .strict();

/** Client-config spellings accepted inside an `mcpServers` / `servers` map (Claude Desktop, Cursor, VS Code, Cline). */
export const CLIENT_TYPES = ['stdio', 'http', 'sse', 'streamable-http', 'streamableHttp'] as const;

export const clientServerEntrySchema = serverManifestSchema
  .extend({
    type: z.enum(CLIENT_TYPES).optional(),
    /** A disabled entry is skipped, as the client would skip it. */
    disabled: z.boolean().optional(),
  })
  .strict();

export type RawServerEntry = z.output<typeof clientServerEntrySchema>;

/** Top-level keys of a client config file that hold the server map. */
export const SERVER_MAP_KEYS = ['mcpServers', 'servers'] as const;

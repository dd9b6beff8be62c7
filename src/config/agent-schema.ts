/** zod schema of one agents.d file (SPEC §4). Mirrored by schema/agent-manifest.schema.json. */
import { z } from 'zod';
import { NAME_PATTERN, NAME_RULE } from './problems.js';

export const SHA256_REF = /^sha256:[0-9a-f]{64}$/;
const SHA256_HINT = "must be 'sha256:' followed by 64 lowercase hex digits (e.g. printf %s \"$KEY\" | sha256sum); never the key itself";

const glob = z.string().min(1, 'an empty pattern matches nothing; remove it');
const globList = z.array(glob);
const count = z.number().int().nonnegative('must be a whole number ≥ 0');
const positive = z.number().int().positive('must be a whole number > 0');

const allowDeny = z.object({ allow: globList.default([]), deny: globList.default([]) }).strict();

const usd = z.number().nonnegative('must be an amount ≥ 0');
const rateWindow = z.object({ toolCalls: count.optional(), calls: count.optional(), tokens: count.optional(), costUsd: usd.optional() }).strict();

export const toolRuleSchema = z
  .object({
    tool: glob,
    args: z.record(glob).optional(),
    approval: z.enum(['human', 'console']).optional(),
  })
  .strict();

export const agentManifestSchema = z
  .object({
    id: z.string().regex(NAME_PATTERN, `id must use ${NAME_RULE}`).optional(),
    owner: z.string().min(1).optional(),
    team: z.string().min(1).optional(),
    credentials: z
      .object({
        jwt: z
          .object({
            sub: z.string().min(1).optional(),
            client_id: z.string().min(1).optional(),
            azp: z.string().min(1).optional(),
            iss: z.string().min(1).optional(),
          })
          .strict()
          .refine((j) => j.sub !== undefined || j.client_id !== undefined || j.azp !== undefined, {
            message: 'name at least one of sub, client_id or azp to match verified tokens on',
          })
          .optional(),
        apiKeys: z.array(z.string().regex(SHA256_REF, `API key ${SHA256_HINT}`)).default([]),
      })
      .strict()
      .default({}),
    tools: z
      .object({
        allow: globList.default([]),
        deny: globList.default([]),
        rules: z.array(toolRuleSchema).default([]),
      })
      .strict()
      .default({}),
    prompts: allowDeny.optional(),
    resources: allowDeny.optional(),
    a2a: z.object({ allow: globList.default([]) }).strict().default({}),
    models: z.object({ allow: globList.default([]), deny: globList.default([]) }).strict().default({}),
    delegation: z
      .object({
        agents: z.array(z.string().min(1)).default([]),
        maxDepth: count.optional(),
        maxChildren: count.default(8),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        workflow: z
          .object({ steps: positive.optional(), toolCalls: count.optional(), tokens: count.optional(), costUsd: usd.optional(), seconds: positive.optional() })
          .strict()
          .optional(),
        perMinute: rateWindow.optional(),
        perHour: rateWindow.optional(),
        perDay: rateWindow.optional(),
        perMonth: rateWindow.optional(),
        loop: z.object({ sameCall: positive.optional(), windowSeconds: positive.optional(), cycle: positive.optional() }).strict().optional(),
        sessions: positive.optional(),
      })
      .strict()
      .default({}),
    canSetWorkflow: z.boolean().default(false),
  })
  .strict();

export type RawAgent = z.output<typeof agentManifestSchema>;

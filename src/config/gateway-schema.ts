/** zod schema of gateway.yaml with its defaults. Mirrored by schema/gateway.schema.json. */
import { z } from 'zod';
import { SHA256_REF } from './agent-schema.js';
import { between, count, flag, positive } from './zod-fields.js';

export const DEFAULT_REDACT = ['password', 'passwd', 'passphrase', 'token', 'secret', 'authorization', 'api_key', 'private_key', 'credential', 'credentials', 'cookie'];
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

const httpUrl = z
  .string()
  .url('must be a URL such as https://idp.example.com/.well-known/jwks.json')
  .refine((u) => /^https?:\/\//i.test(u), 'must use http or https');

const redisUrl = z
  .string()
  .refine((u) => /^rediss?:\/\/[^\s]+$/i.test(u), 'must be a Redis URL such as redis://127.0.0.1:6379/0 (rediss:// for TLS)');
const postgresUrl = z
  .string()
  .refine((u) => /^postgres(ql)?:\/\/[^\s]+$/i.test(u), 'must be a PostgreSQL URL such as postgres://user@127.0.0.1:5432/switchyard');

/** A non-negative amount of US dollars (budgets, prices); text from `${VAR}` is accepted. */
const usd = () => z.preprocess((v) => (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), z.number().nonnegative('must be an amount ≥ 0'));

const rateWindow = z.object({ toolCalls: count().optional(), calls: count().optional(), tokens: count().optional(), costUsd: usd().optional() }).strict();
const teamLimits = z.object({ perMinute: rateWindow.optional(), perHour: rateWindow.optional(), perDay: rateWindow.optional(), perMonth: rateWindow.optional() }).strict();

/** Model names travel in `model` fields and metric labels: printable, no spaces, bounded. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@\/-]{0,127}$/;

export const issuerSchema = z
  .object({
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    jwksUri: httpUrl.optional(),
    jwksFile: z.string().min(1).optional(),
    algorithms: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .refine((i) => (i.jwksUri === undefined) !== (i.jwksFile === undefined), {
    message: "give exactly one of 'jwksUri' (fetched keys) or 'jwksFile' (a local JWKS file) for this issuer",
  });

export const modelSchema = z
  .object({
    name: z.string().regex(MODEL_NAME, 'model name must be 1-128 letters, digits and . _ : @ / - (no spaces), starting with a letter or digit'),
    provider: z.enum(['openai', 'anthropic']).default('openai'),
    baseUrl: httpUrl,
    apiKey: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    headers: z.record(z.string()).default({}),
    price: z.object({ input: usd(), output: usd(), cachedInput: usd().optional() }).strict().optional(),
    fallbacks: z.array(z.string().min(1)).default([]),
    timeoutMs: positive().default(120_000),
    breaker: z.object({ failures: positive().default(5), cooldownSeconds: positive().default(10) }).strict().default({}),
  })
  .strict();

export const gatewaySchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: between(0, 65535).default(8080),
    dataDir: z.string().min(1).default('./data'),
    serversDir: z.string().min(1).default('./servers.d'),
    agentsDir: z.string().min(1).default('./agents.d'),
    publicUrl: httpUrl.optional(),
    maxBodyBytes: positive().default(DEFAULT_MAX_BODY_BYTES),
    allowedHosts: z.array(z.string().min(1)).default([]),
    allowedOrigins: z.array(z.string().min(1)).default([]),
    auth: z.object({ issuers: z.array(issuerSchema).default([]) }).strict().default({}),
    admin: z
      .object({
        tokens: z
          .array(z.string().regex(SHA256_REF, "admin token must be 'sha256:' followed by 64 lowercase hex digits of the token; never the token itself"))
          .default([]),
      })
      .strict()
      .default({}),
    teams: z.record(teamLimits).default({}),
    audit: z
      .object({
        enabled: flag().default(true),
        durability: z.enum(['batched', 'strict']).default('batched'),
        flushMs: positive().default(100),
        retentionDays: positive().optional(),
        redact: z.array(z.string().min(1)).default(DEFAULT_REDACT),
        hmacKeyFile: z.string().min(1).optional(),
        modelBodies: z.enum(['none', 'hash', 'full']).default('none'),
      })
      .strict()
      .default({}),
    delegation: z.object({ maxTokenSeconds: positive().default(3600) }).strict().default({}),
    models: z.array(modelSchema).default([]),
    modelRoute: z
      .object({
        reservationCapTokens: positive().default(8192),
        /** Most bytes of a provider stream read after the client left, so a disconnected call is still charged. */
        maxDrainBytes: positive().default(16 * 1024 * 1024),
      })
      .strict()
      .default({}),
    listTimeoutMs: positive().default(5000),
    sessions: z.object({ idleSeconds: positive().default(900), max: positive().default(1000) }).strict().default({}),
    approval: z.object({ timeoutSeconds: positive().default(300), webhook: httpUrl.optional() }).strict().default({}),
    state: z
      .object({
        redis: redisUrl.optional(),
        failMode: z.enum(['closed', 'open']).default('closed'),
        /** Where the other replicas reach this one (sessions it owns are forwarded here); default from host and port. */
        advertiseUrl: z
          .string()
          .refine((u) => /^https?:\/\/[^\s/]+[^\s]*$/i.test(u) && URL.canParse(u), 'must be an http(s) URL where the other replicas reach this one, e.g. http://10.0.0.7:8080')
          .optional(),
      })
      .strict()
      .default({}),
    store: z.object({ postgres: postgresUrl.optional() }).strict().default({}),
  })
  .strict();

export type RawGateway = z.output<typeof gatewaySchema>;

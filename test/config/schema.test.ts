import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z, type ZodTypeAny } from 'zod';
import { describe, expect, it } from 'vitest';
import { clientServerEntrySchema, serverManifestSchema } from '../../src/config/server-schema.js';
import { agentManifestSchema } from '../../src/config/agent-schema.js';
import { gatewaySchema } from '../../src/config/gateway-schema.js';
import { checkJsonSchema, resolveRef, type JsonSchema } from './json-schema-check.js';

const loadSchema = (name: string): JsonSchema =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../../schema/${name}`, import.meta.url)), 'utf8')) as JsonSchema;

const serverJson = loadSchema('server-manifest.schema.json');
const agentJson = loadSchema('agent-manifest.schema.json');
const gatewayJson = loadSchema('gateway.schema.json');

function unwrap(t: ZodTypeAny): ZodTypeAny {
  for (;;) {
    if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap() as ZodTypeAny;
    else if (t instanceof z.ZodDefault) t = t._def.innerType as ZodTypeAny;
    else if (t instanceof z.ZodEffects) t = t.innerType() as ZodTypeAny;
    else return t;
  }
}

/** The JSON schema node describing objects (following $ref and picking the object branch of anyOf). */
function objectNode(root: JsonSchema, node: JsonSchema): JsonSchema | undefined {
  if (typeof node.$ref === 'string') return objectNode(root, resolveRef(root, node.$ref));
  if (node.type === 'object') return node;
  for (const branch of (node.anyOf ?? []) as JsonSchema[]) {
    const found = objectNode(root, branch);
    if (found) return found;
  }
  return undefined;
}

function arrayItems(root: JsonSchema, node: JsonSchema): JsonSchema | undefined {
  if (typeof node.$ref === 'string') return arrayItems(root, resolveRef(root, node.$ref));
  return node.type === 'array' ? (node.items as JsonSchema) : undefined;
}

/** Every object level of the zod schema has exactly the same keys as the JSON schema at that level. */
function compareKeys(root: JsonSchema, zodType: ZodTypeAny, json: JsonSchema, path: string, out: string[]): void {
  const t = unwrap(zodType);
  if (t instanceof z.ZodObject) {
    const node = objectNode(root, json);
    if (!node) return void out.push(`${path}: JSON schema has no object here`);
    const zodKeys = Object.keys(t.shape as Record<string, ZodTypeAny>).sort();
    const props = (node.properties ?? {}) as Record<string, JsonSchema>;
    const jsonKeys = Object.keys(props).sort();
    if (zodKeys.join() !== jsonKeys.join()) out.push(`${path}: zod [${zodKeys.join(', ')}] vs JSON [${jsonKeys.join(', ')}]`);
    if (node.additionalProperties !== false) out.push(`${path}: JSON schema should forbid unknown fields, as zod does`);
    for (const key of zodKeys) if (props[key]) compareKeys(root, (t.shape as Record<string, ZodTypeAny>)[key], props[key], `${path}.${key}`, out);
  } else if (t instanceof z.ZodArray) {
    const items = arrayItems(root, json);
    if (items) compareKeys(root, t.element as ZodTypeAny, items, `${path}[]`, out);
  } else if (t instanceof z.ZodRecord) {
    const node = objectNode(root, json);
    const values = node?.additionalProperties;
    if (values && typeof values === 'object') compareKeys(root, t.valueSchema as ZodTypeAny, values as JsonSchema, `${path}{}`, out);
  }
}

describe('JSON schemas agree with the zod schemas', () => {
  it.each([
    ['server manifest', serverManifestSchema, serverJson, { $ref: '#/$defs/manifest' }],
    ['client map entry', clientServerEntrySchema, serverJson, { $ref: '#/$defs/clientEntry' }],
    ['agent manifest', agentManifestSchema, agentJson, agentJson],
    ['gateway.yaml', gatewaySchema, gatewayJson, gatewayJson],
  ] as const)('%s: same fields at every level', (_label, zodSchema, root, node) => {
    const mismatches: string[] = [];
    compareKeys(root, zodSchema, node, '$', mismatches);
    expect(mismatches).toEqual([]);
  });

  const hash = `sha256:${'c'.repeat(64)}`;
  const samples: [string, ZodTypeAny, JsonSchema, JsonSchema, unknown, boolean][] = [];
  const add = (label: string, zodSchema: ZodTypeAny, root: JsonSchema, node: JsonSchema, value: unknown, valid: boolean) =>
    samples.push([`${label} ${valid ? 'accepts' : 'rejects'} ${JSON.stringify(value)}`, zodSchema, root, node, value, valid]);

  const manifest = { $ref: '#/$defs/manifest' };
  for (const v of [
    { command: 'node', args: ['a.js', 1] },
    { transport: 'http', url: 'https://x', headers: { A: 'b' }, tools: { include: ['a*'], exclude: [] }, timeoutMs: 100, session: 'shared', required: true, identity: 'jwt' },
    { command: 'npx', connectTimeoutMs: 30000, idleSeconds: 600, breaker: { failures: 3, cooldownSeconds: 20 } },
  ])
    add('server', serverManifestSchema, serverJson, manifest, v, true);
  for (const v of [{ comand: 'x' }, { name: 'Bad' }, { transport: 'ws' }, { tools: { include: '*' } }, { tools: { only: [] } }, { timeoutMs: 0 }, { identity: 'oauth' }, { session: 'x' }, { env: { A: [] } }, { connectTimeoutMs: 0 }, { idleSeconds: -1 }, { breaker: { failures: 0 } }, { breaker: { tries: 3 } }])
    add('server', serverManifestSchema, serverJson, manifest, v, false);
  const entry = { $ref: '#/$defs/clientEntry' };
  add('client entry', clientServerEntrySchema, serverJson, entry, { type: 'streamableHttp', url: 'https://x', disabled: false }, true);
  add('client entry', clientServerEntrySchema, serverJson, entry, { type: 'websocket', url: 'wss://x' }, false);
  add('client entry', clientServerEntrySchema, serverJson, entry, { command: 'x', autoApprove: [] }, false);

  for (const v of [
    {},
    {
      id: 'a',
      owner: 'o',
      team: 't',
      credentials: { jwt: { client_id: 'c', iss: 'i' }, apiKeys: [hash] },
      tools: { allow: ['*'], deny: [], rules: [{ tool: 'x', args: { a: 'b*' }, approval: 'human' }] },
      prompts: { allow: ['*'] },
      resources: { deny: ['*'] },
      a2a: { allow: [] },
      models: { allow: ['m'] },
      delegation: { agents: ['b'], maxDepth: 2, maxChildren: 3 },
      limits: { workflow: { steps: 1, tokens: 0 }, perHour: { calls: 3 }, loop: { sameCall: 2, windowSeconds: 5, cycle: 2 }, sessions: 4 },
      canSetWorkflow: true,
    },
  ])
    add('agent', agentManifestSchema, agentJson, agentJson, v, true);
  for (const v of [
    { id: 'Bad' },
    { credentials: { apiKeys: ['abc'] } },
    { credentials: { jwt: { iss: 'x' } } },
    { tools: { rules: [{ args: {} }] } },
    { tools: { rules: [{ tool: 'x', approval: 'auto' }] } },
    { limits: { perMinute: { toolCalls: -1 } } },
    { limits: { loop: { sameCall: 0 } } },
    { limits: { perWeek: {} } },
    { canSetWorkflow: 'yes' },
    { delegation: { maxDepth: 1.5 } },
    { limits: { sessions: 0 } },
  ])
    add('agent', agentManifestSchema, agentJson, agentJson, v, false);

  for (const v of [
    {},
    {
      host: '0.0.0.0',
      port: 0,
      publicUrl: 'https://gw.example.com',
      auth: { issuers: [{ issuer: 'https://idp', audience: ['a'], jwksUri: 'https://idp/jwks', algorithms: ['RS256'] }] },
      admin: { tokens: [hash] },
      teams: { data: { perDay: { tokens: 5 } } },
      audit: { enabled: false, durability: 'strict', flushMs: 5, retentionDays: 7, redact: [] },
      delegation: { maxTokenSeconds: 60 },
      models: [{ name: 'm', baseUrl: 'http://localhost:1234/v1', apiKey: 'k', model: 'x' }],
      listTimeoutMs: 100,
      sessions: { idleSeconds: 60, max: 50 },
      maxBodyBytes: 10,
      allowedHosts: ['gw.example.com'],
      allowedOrigins: ['https://app.example.com'],
    },
  ])
    add('gateway', gatewaySchema, gatewayJson, gatewayJson, v, true);
  for (const v of [
    { port: 70000 },
    { port: 80.5 },
    { auth: { issuers: [{ issuer: 'a', audience: 'b' }] } },
    { auth: { issuers: [{ issuer: 'a', audience: 'b', jwksUri: 'https://k', jwksFile: 'k.json' }] } },
    { admin: { tokens: ['x'] } },
    { audit: { durability: 'x' } },
    { models: [{ name: 'm' }] },
    { teams: { a: { perWeek: {} } } },
    { listen: 'x' },
    { sessions: { idleSeconds: 0 } },
    { sessions: { perAgent: 3 } },
  ])
    add('gateway', gatewaySchema, gatewayJson, gatewayJson, v, false);

  it.each(samples)('%s', (_label, zodSchema, root, node, value, valid) => {
    expect(zodSchema.safeParse(value).success).toBe(valid);
    expect(checkJsonSchema(root, value, node)).toEqual(valid ? [] : expect.arrayContaining([expect.any(String)]));
  });

  it('the servers.d schema accepts client configs as a whole', () => {
    expect(checkJsonSchema(serverJson, { mcpServers: { a: { command: 'node' } } })).toEqual([]);
    expect(checkJsonSchema(serverJson, { servers: { a: { type: 'http', url: 'https://x' } } })).toEqual([]);
    expect(checkJsonSchema(serverJson, { mcpServers: { a: { command: 'node', bogus: 1 } } })).not.toEqual([]);
  });
});

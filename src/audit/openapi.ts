/** The OpenAPI 3.1 description of /admin/api: the audit and workflow routes, plus whatever other rooms add. */

export type JsonObject = { [key: string]: unknown };

const extraPaths: Record<string, JsonObject> = {};
const extraSchemas: Record<string, JsonObject> = {};

/**
 * Describe more admin routes (paths relative to /admin/api, e.g. "/agents"), and any component schemas they reference
 * as "#/components/schemas/Name". Adding a path twice merges its operations.
 */
export function addAdminApiPaths(paths: Record<string, JsonObject>, schemas: Record<string, JsonObject> = {}): void {
  for (const [path, item] of Object.entries(paths)) extraPaths[path] = { ...(extraPaths[path] ?? {}), ...item };
  Object.assign(extraSchemas, schemas);
}

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string): JsonObject => ({ type: [type, 'null'] });
const json = (schema: JsonObject, description: string): JsonObject => ({ description, content: { 'application/json': { schema } } });
const errorResponse = (description: string): JsonObject => json(ref('Error'), description);
/** A keyset-paged list response: `{[key]: [...], nextCursor}`. */
const page = (key: string, itemSchema: string, description: string): JsonObject =>
  json({ type: 'object', required: [key, 'nextCursor'], properties: { [key]: { type: 'array', items: ref(itemSchema) }, nextCursor: nullable('string') } }, description);
const query = (name: string, description: string, schema: JsonObject = { type: 'string' }): JsonObject => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const timeParam = (name: 'since' | 'until'): JsonObject =>
  query(name, `${name === 'since' ? 'Earliest' : 'Latest'} time, inclusive: ISO 8601 or epoch milliseconds.`);
const pagingParams: JsonObject[] = [
  query('limit', 'Page size (default 100).', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }),
  query('cursor', 'The nextCursor of the previous page.'),
];
const auditFilterParams: JsonObject[] = [
  query('agent', 'Calling agent id.'),
  query('user', 'Acting-for user.'),
  query('tool', 'Upstream tool name, or the exposed server__tool name.'),
  query('server', 'Federated server name.'),
  query('outcome', 'Step outcome.', { type: 'string', enum: ['ok', 'error', 'refused'] }),
  query('workflowId', 'Only this workflow.'),
  query('reason', 'Refusal or error reason, e.g. policy_denied.'),
  query('q', 'Words that must appear, in order, in the (redacted) arguments (full-text search).'),
  timeParam('since'),
  timeParam('until'),
];
const workflowIdParam: JsonObject = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

const stateChange = (action: string, to: string): JsonObject => ({
  post: {
    tags: ['workflows'],
    summary: `${action[0]?.toUpperCase()}${action.slice(1)} a workflow (state becomes ${to}).`,
    parameters: [workflowIdParam],
    requestBody: {
      required: false,
      content: { 'application/json': { schema: { type: 'object', properties: { why: { type: 'string' } } } } },
    },
    responses: {
      200: json(ref('Workflow'), 'The workflow after the change (unchanged when it was already in that state).'),
      404: errorResponse('No such workflow.'),
      409: errorResponse('The workflow cannot make this change from its current state (e.g. resuming a killed workflow).'),
    },
  },
});

const jtiParam: JsonObject = { name: 'jti', in: 'path', required: true, schema: { type: 'string' }, description: 'The token\'s "jti" claim.' };
const stringList: JsonObject = { type: 'array', items: { type: 'string' } };
const allowDeny: JsonObject = { type: 'object', properties: { allow: stringList, deny: stringList } };

const schemas: Record<string, JsonObject> = {
  Error: {
    type: 'object',
    required: ['error', 'message'],
    properties: { error: { type: 'string', description: 'Machine-readable code.' }, message: { type: 'string' } },
  },
  WorkflowState: { type: 'string', enum: ['active', 'paused', 'tripped', 'killed', 'done'] },
  Workflow: {
    type: 'object',
    required: ['id', 'agent', 'state', 'startedAt', 'steps'],
    properties: {
      id: { type: 'string' },
      agent: { type: 'string', description: 'The agent whose session started it.' },
      user: nullable('string'),
      state: ref('WorkflowState'),
      kind: { type: 'string', enum: ['mcp', 'a2a', 'model'] },
      startedAt: { type: 'string', format: 'date-time' },
      endedAt: { type: ['string', 'null'], format: 'date-time' },
      steps: { type: 'integer', description: 'Steps allocated so far.' },
      traceparent: nullable('string'),
      why: { type: ['string', 'null'], description: 'Reason given for the last state change.' },
    },
  },
  WorkflowStep: {
    type: 'object',
    required: ['step', 'agent', 'tool', 'outcome', 'startedAt', 'durationMs'],
    properties: {
      step: { type: 'integer' },
      parentStep: nullable('integer'),
      agent: { type: 'string' },
      user: nullable('string'),
      kind: { type: 'string' },
      server: nullable('string'),
      tool: { type: 'string' },
      outcome: { type: 'string', enum: ['ok', 'error', 'refused'] },
      reason: nullable('string'),
      startedAt: { type: 'string', format: 'date-time' },
      durationMs: { type: 'number' },
      bytes: nullable('integer'),
      tokens: nullable('integer'),
      children: { type: 'array', items: ref('WorkflowStep') },
    },
  },
  WorkflowTree: {
    type: 'object',
    required: ['id', 'agent', 'state', 'steps', 'tree'],
    properties: {
      id: { type: 'string' },
      agent: { type: 'string' },
      user: nullable('string'),
      state: ref('WorkflowState'),
      kind: { type: 'string' },
      startedAt: { type: 'string', format: 'date-time' },
      endedAt: { type: ['string', 'null'], format: 'date-time' },
      stepCount: { type: 'integer' },
      steps: { type: 'array', items: ref('WorkflowStep'), description: 'Recorded steps in step order.' },
      tree: { type: 'array', items: ref('WorkflowStep'), description: 'The same steps nested under their parent step.' },
    },
  },
  Server: {
    type: 'object',
    required: ['name', 'transport', 'up', 'required', 'breaker', 'headers', 'env', 'source'],
    description: 'A federated server. Secrets are never listed: header and env names only, URLs without user info or query.',
    properties: {
      name: { type: 'string' },
      transport: { type: 'string', enum: ['stdio', 'http', 'sse', 'a2a'] },
      up: { type: 'boolean' },
      required: { type: 'boolean', description: 'true: /readyz fails while it is down.' },
      breaker: { type: 'string', enum: ['closed', 'open', 'half-open'] },
      restarts: {
        type: 'object',
        description: 'Upstream sessions that ended on their own (each restarts on next use) and that failed to start, since the gateway started.',
        properties: { ended: { type: 'integer' }, failedStarts: { type: 'integer' } },
      },
      checkedAt: { type: 'string', format: 'date-time' },
      lastError: { type: 'string' },
      url: { type: 'string' },
      command: { type: 'string' },
      headers: { ...stringList, description: 'Names of the headers sent upstream.' },
      env: { ...stringList, description: 'Names of the environment variables set.' },
      tools: { type: 'object', properties: { include: stringList, exclude: stringList } },
      session: { type: 'string', enum: ['per-client', 'shared'] },
      timeoutMs: { type: 'integer' },
      identity: { type: 'string', enum: ['jwt'] },
      allowOrigins: stringList,
      source: { type: 'string', description: 'The servers.d file.' },
    },
  },
  Agent: {
    type: 'object',
    required: ['id', 'credentials', 'tools', 'a2a', 'models', 'delegation', 'limits', 'canSetWorkflow', 'source'],
    description: 'An agents.d manifest: policy and limits. Credential hashes are never listed, only how many API keys it has.',
    properties: {
      id: { type: 'string' },
      owner: { type: 'string' },
      team: { type: 'string' },
      credentials: { type: 'object', properties: { apiKeys: { type: 'integer' }, jwt: { type: 'object' } } },
      tools: { type: 'object', properties: { allow: stringList, deny: stringList, rules: { type: 'array', items: { type: 'object' } } } },
      prompts: allowDeny,
      resources: allowDeny,
      a2a: { type: 'object', properties: { allow: stringList } },
      models: { type: 'object', properties: { allow: stringList } },
      delegation: { type: 'object', properties: { agents: stringList, maxDepth: { type: 'integer' }, maxChildren: { type: 'integer' } } },
      limits: { type: 'object' },
      canSetWorkflow: { type: 'boolean' },
      source: { type: 'string', description: 'The agents.d file.' },
    },
  },
  AuditRecord: {
    type: 'object',
    required: ['id', 'time', 'workflowId', 'step', 'agent', 'tool', 'outcome', 'hash'],
    properties: {
      id: { type: 'integer' },
      time: { type: 'string', format: 'date-time' },
      workflowId: { type: 'string' },
      step: { type: 'integer' },
      parentStep: nullable('integer'),
      agent: { type: 'string' },
      user: nullable('string'),
      chain: { type: 'array', items: { type: 'string' }, description: 'Delegation chain, root first.' },
      kind: { type: 'string' },
      server: nullable('string'),
      tool: { type: 'string' },
      args: { description: 'Arguments with configured secret keys replaced by "[REDACTED]".' },
      outcome: { type: 'string', enum: ['ok', 'error', 'refused'] },
      reason: { ...nullable('string'), description: 'Refusal or error reason (SPEC section 7); `cancelled` for a call the client or a workflow kill cancelled.' },
      durationMs: { type: 'number' },
      bytes: { ...nullable('integer'), description: "Size of the upstream's response on the wire; null when not known (refusals, cancelled calls, legacy SSE and A2A upstreams)." },
      tokens: nullable('integer'),
      traceparent: nullable('string'),
      prevHash: { type: 'string' },
      hash: { type: 'string' },
    },
  },
};

const basePaths: Record<string, JsonObject> = {
  '/workflows': {
    get: {
      tags: ['workflows'],
      summary: 'List workflows, newest first.',
      parameters: [
        query('agent', 'Agent that started the workflow.'),
        query('state', 'Workflow state.', ref('WorkflowState')),
        timeParam('since'),
        timeParam('until'),
        ...pagingParams,
      ],
      responses: {
        200: page('workflows', 'Workflow', 'One page of workflows.'),
        400: errorResponse('A query parameter is invalid.'),
      },
    },
  },
  '/workflows/{id}': {
    get: {
      tags: ['workflows'],
      summary: 'One workflow with its step tree and timings.',
      parameters: [workflowIdParam],
      responses: { 200: json(ref('WorkflowTree'), 'The workflow.'), 404: errorResponse('No such workflow.') },
    },
  },
  '/workflows/{id}/pause': stateChange('pause', 'paused'),
  '/workflows/{id}/resume': stateChange('resume', 'active'),
  '/workflows/{id}/kill': stateChange('kill', 'killed'),
  '/audit': {
    get: {
      tags: ['audit'],
      summary: 'Audit records, newest first.',
      parameters: [...auditFilterParams, ...pagingParams],
      responses: {
        200: page('records', 'AuditRecord', 'One page of records.'),
        400: errorResponse('A query parameter is invalid.'),
      },
    },
  },
  '/audit/export': {
    get: {
      tags: ['audit'],
      summary: 'Every matching record, oldest first, as JSON lines.',
      parameters: auditFilterParams,
      responses: {
        200: { description: 'One AuditRecord per line.', content: { 'application/x-ndjson': { schema: ref('AuditRecord') } } },
        400: errorResponse('A query parameter is invalid.'),
      },
    },
  },
  '/audit/verify': {
    get: {
      tags: ['audit'],
      summary: 'Walk the audit hash chain.',
      responses: {
        200: json(
          {
            type: 'object',
            required: ['ok', 'records'],
            properties: {
              ok: { type: 'boolean' },
              records: { type: 'integer', description: 'Records verified (before the break, when broken).' },
              firstBroken: {
                type: 'object',
                properties: { id: { type: 'integer' }, workflowId: { type: 'string' }, step: { type: 'integer' } },
                description: 'Absent when the break is at the end (newest records deleted) or in the head.',
              },
              keyed: { type: 'boolean', description: 'true when the chain is HMAC-keyed (audit.hmacKeyFile).' },
              message: { type: 'string' },
            },
          },
          'The verification result (ok false names the first broken record).',
        ),
      },
    },
  },
  '/audit/counts': {
    get: {
      tags: ['audit'],
      summary: 'List calls and pings, counted per UTC day, agent and method.',
      parameters: [query('agent', 'Agent id.'), query('sinceDay', 'First day, YYYY-MM-DD.')],
      responses: {
        200: json(
          {
            type: 'object',
            properties: {
              counts: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { day: { type: 'string' }, agent: { type: 'string' }, method: { type: 'string' }, count: { type: 'integer' } },
                },
              },
            },
          },
          'Counts, newest day first.',
        ),
        400: errorResponse('A query parameter is invalid.'),
      },
    },
  },
  '/servers': {
    get: {
      tags: ['gateway'],
      summary: 'Federated servers with their health and circuit breaker state.',
      responses: { 200: json({ type: 'object', required: ['servers'], properties: { servers: { type: 'array', items: ref('Server') } } }, 'Every server, by name.') },
    },
  },
  '/agents': {
    get: {
      tags: ['gateway'],
      summary: 'Agents of agents.d with their policy and limits.',
      responses: { 200: json({ type: 'object', required: ['agents'], properties: { agents: { type: 'array', items: ref('Agent') } } }, 'Every agent, by id.') },
    },
  },
  '/tokens/{jti}': {
    get: {
      tags: ['tokens'],
      summary: 'A delegated token minted here: its claims, whether it is revoked, and the tokens minted from it.',
      parameters: [jtiParam],
      responses: { 200: json({ type: 'object' }, 'The token.'), 404: errorResponse('No token with this jti was minted here.') },
    },
  },
  '/tokens/{jti}/revoke': {
    post: {
      tags: ['tokens'],
      summary: 'Revoke a token and every token delegated from it.',
      parameters: [jtiParam],
      responses: {
        200: json({ type: 'object', required: ['jti', 'revoked'], properties: { jti: { type: 'string' }, revoked: { ...stringList, description: 'Every jti revoked now.' } } }, 'What was revoked.'),
        404: errorResponse('No token with this jti was minted here or delegated from.'),
      },
    },
  },
  '/openapi.json': {
    get: { tags: ['meta'], summary: 'This document.', responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1 document.') } },
  },
};

/** The current document: the audit room's routes merged with every addAdminApiPaths() call so far. */
export function adminOpenApiDocument(serverUrl = '/admin/api'): JsonObject {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard admin API',
      version: '1',
      description: 'Workflows, the audit trail and gateway administration. Every route needs the admin token.',
    },
    servers: [{ url: serverUrl }],
    security: [{ adminToken: [] }],
    paths: { ...basePaths, ...extraPaths },
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'An admin token listed (hashed) in gateway.yaml admin.tokens.' } },
      schemas: { ...schemas, ...extraSchemas },
    },
  };
}

/** OpenAPI description of the admin routes the console and the approval queue add (approvals, live views, tools). */
import { addAdminApiPaths, type JsonObject } from '../audit/openapi.js';

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonObject, description: string): JsonObject => ({ description, content: { 'application/json': { schema } } });
const error = (description: string): JsonObject => json(ref('Error'), description);
const idParam: JsonObject = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

const decision = (verb: 'approve' | 'deny'): JsonObject => ({
  post: {
    tags: ['approvals'],
    summary: `${verb === 'approve' ? 'Approve' : 'Deny'} a held call; the first decision wins and the call ${verb === 'approve' ? 'is forwarded' : 'is refused approval_denied'}.`,
    parameters: [idParam],
    requestBody: {
      required: false,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: {
              reason: { type: 'string', maxLength: 2000 },
              argsDigest: { type: 'string', description: 'The argsDigest you decided on; a different one is refused with 409 digest_mismatch.' },
            },
          },
        },
      },
    },
    responses: {
      200: json(ref('Approval'), 'The approval after the decision.'),
      400: error('A bad reason or argsDigest, or a body that is not JSON.'),
      404: error('No such approval.'),
      409: error('Decided already (already_decided: an approval is used once) or other arguments (digest_mismatch).'),
    },
  },
});

addAdminApiPaths(
  {
    '/approvals': {
      get: {
        tags: ['approvals'],
        summary: 'Calls held for a human, newest first (pending by default).',
        parameters: [
          { name: 'state', in: 'query', required: false, schema: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'cancelled', 'decided'], default: 'pending' } },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'before', in: 'query', required: false, schema: { type: 'string' }, description: 'The nextBefore of the previous page.' },
        ],
        responses: {
          200: json({ type: 'object', required: ['approvals', 'nextBefore'], properties: { approvals: { type: 'array', items: ref('Approval') }, nextBefore: { type: ['string', 'null'] } } }, 'One page of approvals.'),
          400: error('A bad state or limit.'),
        },
      },
    },
    '/approvals/{id}': {
      get: { tags: ['approvals'], summary: 'One approval.', parameters: [idParam], responses: { 200: json(ref('Approval'), 'The approval.'), 404: error('No such approval.') } },
    },
    '/approvals/{id}/approve': decision('approve'),
    '/approvals/{id}/deny': decision('deny'),
    '/events': {
      get: {
        tags: ['console'],
        summary: 'Server-sent events: `step` for each finished step, `workflow` for each workflow state change.',
        responses: { 200: { description: 'An event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
      },
    },
    '/overview': {
      get: {
        tags: ['console'],
        summary: 'Refusals in the last hour by reason, and workflows by state.',
        responses: {
          200: json(
            {
              type: 'object',
              properties: {
                refusalsLastHour: { type: 'array', items: { type: 'object', properties: { reason: { type: 'string' }, count: { type: 'integer' } } } },
                workflows: { type: 'object', additionalProperties: { type: 'integer' } },
              },
            },
            'The overview.',
          ),
        },
      },
    },
    '/tokens': {
      get: {
        tags: ['delegation'],
        summary: 'Live (unexpired, unrevoked) delegated tokens, at most 1000.',
        parameters: [{ name: 'agent', in: 'query', required: false, schema: { type: 'string' }, description: 'Tokens minted for or by this agent.' }],
        responses: { 200: json({ type: 'object', properties: { tokens: { type: 'array', items: { type: 'object' } } } }, 'The tokens.') },
      },
    },
    '/agents/{id}/usage': {
      get: {
        tags: ['inventory'],
        summary: "An agent's use of its rolling windows (perMinute, perHour, perDay), to set against its limits.",
        parameters: [idParam],
        responses: { 200: json({ type: 'object', properties: { agent: { type: 'string' }, windows: { type: ['object', 'null'] } } }, 'Window totals, null before the first call.') },
      },
    },
    '/servers/{name}/tools': {
      get: {
        tags: ['inventory'],
        summary: 'The tools one upstream lists, with their input schemas; `exposed` says whether the manifest lets agents see it.',
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          200: json({ type: 'object', properties: { server: { type: 'string' }, tools: { type: 'array', items: { type: 'object' } } } }, 'The tools.'),
          404: error('No such server.'),
          502: error('The upstream could not be reached.'),
        },
      },
    },
  },
  {
    Approval: {
      type: 'object',
      required: ['id', 'agent', 'workflowId', 'tool', 'args', 'argsDigest', 'createdAt', 'expiresAt', 'state'],
      properties: {
        id: { type: 'string' },
        agent: { type: 'string' },
        user: { type: 'string' },
        workflowId: { type: 'string' },
        server: { type: 'string' },
        tool: { type: 'string', description: 'The exposed server__tool name.' },
        args: { type: 'object', description: 'The arguments in full.' },
        argsDigest: { type: 'string', description: 'sha256 of the canonical JSON of args.' },
        createdAt: { type: 'string', format: 'date-time' },
        expiresAt: { type: 'string', format: 'date-time' },
        state: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'cancelled'] },
        decidedBy: { type: 'string', description: 'admin:<sha256 prefix of the admin token>, client, or gateway (timeout).' },
        decidedAt: { type: 'string', format: 'date-time' },
        reason: { type: 'string' },
      },
    },
  },
);

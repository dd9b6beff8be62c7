import { describe, expect, it } from 'vitest';
import { createApprovalGuard } from '../../src/gateway/guards/approval.js';
import { mcpHumanAsker } from '../../src/gateway/ask-human.js';
import { createPolicyGuard } from '../../src/gateway/guards/policy.js';
import type { GuardContext, Refusal, Step, StepKind } from '../../src/gateway/types.js';
import { PolicyResolver } from '../../src/identity/policy.js';
import { AgentRegistry } from '../../src/identity/registry.js';
import { errorResponse, RpcErrorCode } from '../../src/util/jsonrpc.js';
import { refusalResponse } from '../../src/downstream/render/mcp.js';
import { agent, agentMap } from './helpers.js';

const analyst = agent('analyst', {
  tools: {
    allow: ['bigquery__*'],
    deny: ['bigquery__drop_*'],
    rules: [
      { tool: 'bigquery__delete_rows', args: { table: 'tmp_*' } },
      { tool: 'bigquery__delete_*', approval: 'human' },
    ],
  },
  resources: { allow: ['bq://public/*'], deny: [] },
});
const policies = new PolicyResolver(new AgentRegistry(agentMap(analyst)));

function step(kind: StepKind, exposedName: string, args?: Record<string, unknown>, server = 'bigquery'): Step {
  return {
    kind,
    caller: { agentId: 'analyst', principal: 'analyst', agent: analyst, chain: ['analyst'], via: 'jwt' },
    workflowId: 'wf',
    stepNo: 1,
    server,
    target: exposedName,
    exposedName,
    args,
    startedAt: 0,
  };
}

describe('policy guard', () => {
  const guard = createPolicyGuard(policies);

  it('lets allowed calls through synchronously', () => {
    expect(guard(step('tools/call', 'bigquery__query', { sql: 'select 1' }), {})).toBeUndefined();
    expect(guard(step('resources/read', 'bq://public/x'), {})).toBeUndefined();
  });

  it('answers hidden names exactly like nonexistent ones once rendered', () => {
    for (const name of ['bigquery__drop_table', 'github__search']) {
      const r = guard(step('tools/call', name, {}), {}) as Refusal;
      expect(r).toMatchObject({ reason: 'policy_denied', asUnknown: true });
      expect(refusalResponse(7, r, 'wf')).toEqual(errorResponse(7, RpcErrorCode.InvalidParams, `Unknown tool: ${name}`));
    }
    expect(guard(step('prompts/get', 'github__review'), {})).toMatchObject({ asUnknown: true, message: 'Unknown prompt: github__review' });
    expect(guard(step('resources/read', 'bq://private/x'), {})).toMatchObject({ asUnknown: true });
  });

  it('refuses argument-rule violations with policy_denied, visibly', () => {
    const r = guard(step('tools/call', 'bigquery__delete_rows', { table: 'prod_users' }), {}) as Refusal;
    expect(r.reason).toBe('policy_denied');
    expect(r.asUnknown).toBeUndefined();
    expect(r.data).toEqual({ tool: 'bigquery__delete_rows', argument: 'table' });
  });

  it('leaves approval to the approval guard', () => {
    expect(guard(step('tools/call', 'bigquery__delete_rows', { table: 'tmp_1' }), {})).toBeUndefined();
  });
});

describe('approval guard', () => {
  const needsApproval = () => step('tools/call', 'bigquery__delete_rows', { table: 'tmp_1' });
  const formClient = { elicitation: { form: {} } };

  /** The MCP adapter's asker over these session parts, with no approval queue behind it. */
  function mcp(parts: Omit<GuardContext, 'askHuman'>, timeoutMs?: number): GuardContext {
    return { ...parts, askHuman: mcpHumanAsker({ askClient: parts.askClient, clientCapabilities: parts.clientCapabilities, signal: parts.signal, timeoutMs }) };
  }

  function asking(answer: Record<string, unknown> | Error, capabilities: Record<string, unknown> = formClient) {
    const asked: Array<{ method: string; params: Record<string, unknown> }> = [];
    const ctx = mcp({
      clientCapabilities: capabilities,
      askClient: async (method, params) => {
        asked.push({ method, params });
        if (answer instanceof Error) throw answer;
        return answer;
      },
    });
    return { ctx, asked };
  }

  const guard = createApprovalGuard({ policies });

  it('stays synchronous when no approval is needed', () => {
    const { ctx, asked } = asking({ action: 'accept', content: { approve: true } });
    expect(guard(step('tools/call', 'bigquery__query', {}), ctx)).toBeUndefined();
    expect(guard(step('prompts/get', 'bigquery__p'), ctx)).toBeUndefined();
    expect(asked).toHaveLength(0);
  });

  it('asks with a form naming agent, tool and arguments, and forwards on approval', async () => {
    const { ctx, asked } = asking({ action: 'accept', content: { approve: true } });
    expect(await guard(needsApproval(), ctx)).toBeUndefined();
    expect(asked).toEqual([
      {
        method: 'elicitation/create',
        params: {
          mode: 'form',
          message: 'Agent analyst wants to call bigquery__delete_rows with {"table":"tmp_1"}. Allow?',
          requestedSchema: {
            type: 'object',
            properties: { approve: { type: 'boolean', title: 'Approve this call' } },
            required: ['approve'],
          },
        },
      },
    ]);
  });

  it('omits mode for clients older than 2025-11-25 (elicitation: {})', async () => {
    const { ctx, asked } = asking({ action: 'accept', content: { approve: true } }, { elicitation: {} });
    expect(await guard(needsApproval(), ctx)).toBeUndefined();
    expect(asked[0]!.params).not.toHaveProperty('mode');
  });

  it.each([
    ['decline', { action: 'decline' }],
    ['cancel', { action: 'cancel' }],
    ['approve: false', { action: 'accept', content: { approve: false } }],
    ['a client error', new Error('client went away')],
  ])('refuses with approval_denied on %s', async (_label, answer) => {
    const { ctx } = asking(answer);
    expect(await guard(needsApproval(), ctx)).toMatchObject({ reason: 'approval_denied', data: { tool: 'bigquery__delete_rows' } });
  });

  it('refuses without asking when the client cannot show a form', async () => {
    for (const caps of [{}, { elicitation: { url: {} } }, undefined]) {
      const { ctx, asked } = asking({ action: 'accept', content: { approve: true } }, caps as Record<string, unknown>);
      const r = await guard(needsApproval(), caps === undefined ? mcp({ askClient: ctx.askClient }) : ctx);
      expect(r).toMatchObject({ reason: 'approval_denied' });
      expect(r?.message).toMatch(/elicitation/);
      expect(asked).toHaveLength(0);
    }
    expect(await guard(needsApproval(), mcp({ clientCapabilities: formClient }))).toMatchObject({ reason: 'approval_denied' });
    expect(await guard(needsApproval(), {})).toMatchObject({ reason: 'approval_denied' });
  });

  it('refuses when the human does not answer in time', async () => {
    const ctx = mcp({ clientCapabilities: formClient, askClient: () => new Promise(() => {}) }, 20);
    expect(await guard(needsApproval(), ctx)).toMatchObject({ reason: 'approval_denied', message: expect.stringMatching(/No decision/) });
  });

  it('refuses when the call is cancelled while waiting', async () => {
    const controller = new AbortController();
    const ctx = mcp({ clientCapabilities: formClient, askClient: () => new Promise(() => {}), signal: controller.signal });
    const pending = guard(needsApproval(), ctx);
    controller.abort();
    expect(await pending).toMatchObject({ reason: 'approval_denied' });
  });
});

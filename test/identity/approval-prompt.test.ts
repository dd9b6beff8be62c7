/** The human approval prompt through MCP elicitation, end to end: it shows all the arguments or refuses to ask. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ElicitRequest } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, fixtureManifest, startGateway, stopAll, textOf, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { sha256Hex } from '../../src/identity/apikeys.js';
import { MAX_QUESTION_CHARS } from '../../src/gateway/ask-human.js';

const KEY = `key-${randomUUID()}`;
const ADMIN = `admin-${randomUUID()}`;
let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway({
    gatewayYaml: { admin: { tokens: [`sha256:${sha256Hex(ADMIN)}`] } },
    servers: { conf: fixtureManifest() },
    agents: {
      careful: { id: 'careful', credentials: { apiKeys: [`sha256:${sha256Hex(KEY)}`] }, tools: { allow: ['conf__*'], rules: [{ tool: 'conf__echo', approval: 'human' }] } },
    },
  });
}, 60_000);
afterAll(() => stopAll());

/** A client that approves everything and keeps each prompt it was shown. */
async function approvingClient(): Promise<{ call: (text: string) => Promise<unknown>; prompts: string[] }> {
  const prompts: string[] = [];
  const client = await connectClient(gw.mcpUrl, {
    headers: { authorization: `Bearer ${KEY}` },
    handlers: {
      elicitation: (req: ElicitRequest) => {
        prompts.push(req.params.message);
        return { action: 'accept', content: { approve: true } };
      },
    },
  });
  return { call: (text) => client.callTool({ name: 'conf__echo', arguments: { text } }), prompts };
}

describe('approval prompt', () => {
  it('shows the whole arguments, even well past a thousand characters', async () => {
    const { call, prompts } = await approvingClient();
    const text = `${' '.repeat(3000)}DROP TABLE users`;
    expect(textOf(await call(text))).toContain('DROP TABLE users');
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain(JSON.stringify({ text }));
    expect(prompts[0]).toMatch(/DROP TABLE users"\}\. Allow\?$/);
  });

  it('never cuts arguments too large to show: the call waits in the approval queue instead, shown whole, and a deny refuses it', async () => {
    const { call, prompts } = await approvingClient();
    const padded = `${'x'.repeat(MAX_QUESTION_CHARS)}rm -rf /`;
    const pending = call(padded).then(
      () => undefined,
      (e: unknown) => e,
    ) as Promise<{ code?: number; message: string; data?: Record<string, unknown> } | undefined>;
    const admin = { authorization: `Bearer ${ADMIN}` };
    const held = await waitFor(async () => {
      const list = (await (await fetch(`${gw.url}/admin/api/approvals`, { headers: admin })).json()) as { approvals: Array<{ id: string; args: { text: string } }> };
      return list.approvals.find((a) => a.args.text === padded);
    }, { what: 'the call in the approval queue' });
    const denied = await fetch(`${gw.url}/admin/api/approvals/${held.id}/deny`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'too risky' }) });
    expect(denied.status).toBe(200);
    const err = await pending;
    expect(err, 'the call must be refused').toBeDefined();
    expect(err!.code).toBe(-32030);
    expect(err!.data).toMatchObject({ reason: 'approval_denied', tool: 'conf__echo' });
    expect(err!.message).toMatch(/too risky/);
    expect(prompts).toEqual([]);
  });

  it('escapes characters that would not show as themselves (bidi overrides, zero-width)', async () => {
    const { call, prompts } = await approvingClient();
    await call('safe\u202e\u200bfdp.exe');
    expect(prompts[0]).toContain('safe\\u202e\\u200bfdp.exe');
    expect(prompts[0]).not.toMatch(/[\u202e\u200b]/);
  });
});

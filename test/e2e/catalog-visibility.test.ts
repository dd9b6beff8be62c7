// Visibility that does not depend on spelling or listing: resource policy on the canonical (server, URI) pair,
// completions under the visibility of what they complete, prompt names checked against the upstream's own list
// before anything counts them, and shortened prompt names that resolve on a fresh gateway.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, fixtureManifest, readStats, scratch, startGateway, stopAll, waitFor, type RunningGateway } from '../helpers/gateway.js';
import { allAudit, metricsText } from '../helpers/audit-harness.js';

const HELLO = 'fixture://static/hello';
const ITEMS = 'fixture://items/{id}';

afterAll(stopAll);

/** The JSON-RPC error a request ends with (fails the test when it succeeds). */
async function rpcError(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: number }).code, message: (err as Error).message };
  }
  throw new Error('expected the request to fail');
}

const complete = (c: Client, ref: Record<string, string>, argument = 'id') =>
  c.complete({ ref: ref as { type: 'ref/prompt'; name: string }, argument: { name: argument, value: '' } });

describe('resource and prompt policy, whatever the spelling', () => {
  let gw: RunningGateway;
  let statsA: string;
  let statsB: string;
  const upstreamSaw = (method: string) => [...readStats(statsA), ...readStats(statsB)].filter((l) => l.method === method);

  it('refuses a denied URI plain and qualified for reads and subscriptions, and hides denied templates', async () => {
    const dir = scratch('switchyard-visibility-');
    statsA = join(dir, 'a.jsonl');
    statsB = join(dir, 'b.jsonl');
    gw = await startGateway({
      servers: { alpha: fixtureManifest({}, ['--stats-file', statsA]), beta: fixtureManifest({}, ['--stats-file', statsB]) },
      agents: {
        local: { id: 'local', tools: { allow: ['*'] }, prompts: { allow: [] }, resources: { allow: ['*'], deny: ['fixture://static/*', 'fixture://items/*'] } },
      },
    });
    const c = await connectClient(gw.mcpUrl);
    for (const uri of [HELLO, `switchyard+alpha:${HELLO}`, `switchyard+beta:${HELLO}`, 'fixture://items/7', 'switchyard+beta:fixture://items/7']) {
      expect(await rpcError(c.readResource({ uri }))).toMatchObject({ code: -32002, message: expect.stringContaining(`Resource not found: ${uri}`) });
      expect(await rpcError(c.subscribeResource({ uri }))).toMatchObject({ code: -32002, message: expect.stringContaining(`Resource not found: ${uri}`) });
    }
    expect(upstreamSaw('resources/read')).toEqual([]);
    expect(upstreamSaw('resources/subscribe')).toEqual([]);
    const { resourceTemplates } = await c.listResourceTemplates();
    expect(resourceTemplates.filter((t) => t.uriTemplate.includes('fixture://items/'))).toEqual([]);
    const { resources } = await c.listResources();
    expect(resources.filter((r) => r.uri.includes('fixture://static/'))).toEqual([]);
  }, 60_000);

  it('completes neither hidden prompts nor hidden templates, answering exactly as for an unknown reference', async () => {
    const c = await connectClient(gw.mcpUrl);
    const unknownPrompt = await rpcError(complete(c, { type: 'ref/prompt', name: 'alpha__no_such_prompt' }, 'name'));
    expect(unknownPrompt).toMatchObject({ code: -32602, message: expect.stringContaining('Unknown completion reference: prompt alpha__no_such_prompt') });
    const hiddenPrompt = await rpcError(complete(c, { type: 'ref/prompt', name: 'alpha__greet' }, 'name'));
    expect(hiddenPrompt).toEqual({ code: unknownPrompt.code, message: unknownPrompt.message.replace('alpha__no_such_prompt', 'alpha__greet') });

    const unknownTemplate = await rpcError(complete(c, { type: 'ref/resource', uri: 'fixture://nowhere/{id}' }));
    for (const uri of [ITEMS, `switchyard+beta:${ITEMS}`]) {
      expect(await rpcError(complete(c, { type: 'ref/resource', uri }))).toEqual({ code: unknownTemplate.code, message: unknownTemplate.message.replace('fixture://nowhere/{id}', uri) });
    }
    // The single-server view applies the same policy.
    const single = await connectClient(gw.serverUrl('alpha'));
    expect(await rpcError(complete(single, { type: 'ref/prompt', name: 'greet' }, 'name'))).toMatchObject({ code: -32602 });
    expect(await rpcError(complete(single, { type: 'ref/resource', uri: ITEMS }))).toMatchObject({ code: -32602 });
    expect(upstreamSaw('completion/complete')).toEqual([]);
  });
});

describe('prompt names checked against the upstream before anything counts them', () => {
  const server = 'fixture-with-a-long-server-name1'; // 32 characters, the longest server name allowed
  const prefix = 'condense_the_whole_long_document_'; // with the prefix and '0', 68 characters: shortened
  const servers = { [server]: fixtureManifest({}, ['--prompts', '1', '--prompt-prefix', prefix]) };

  it('refuses unknown prompt names with no audit row, no metric series and no upstream request', async () => {
    const dir = scratch('switchyard-prompts-');
    const stats = join(dir, 'fx.jsonl');
    const gw = await startGateway({ servers: { fx: fixtureManifest({}, ['--stats-file', stats]) } });
    const c = await connectClient(gw.mcpUrl);
    const names = ['fx__no_such_prompt_x1', 'fx__no_such_prompt_x2', 'fx__no_such_prompt_x3'];
    for (const name of names) expect(await rpcError(c.getPrompt({ name }))).toMatchObject({ code: -32602, message: expect.stringContaining(`Unknown prompt: ${name}`) });
    await c.getPrompt({ name: 'fx__simple' }); // a real step, so the audit trail has caught up once it shows
    const audit = await waitFor(async () => {
      const all = await allAudit(gw.url);
      return all.some((r) => r.tool === 'simple') ? all : undefined;
    }, { timeoutMs: 10_000, what: 'the audit row of fx__simple' });
    expect(audit.filter((r) => r.tool.includes('no_such_prompt'))).toEqual([]);
    expect(await metricsText(gw.url)).not.toContain('no_such_prompt');
    expect(readStats(stats).filter((l) => l.method === 'prompts/get').map((l) => l.params?.name)).toEqual(['simple']);
  }, 60_000);

  it('resolves a shortened prompt name on a freshly started gateway before anyone listed prompts', async () => {
    const first = await startGateway({ servers });
    const lister = await connectClient(first.mcpUrl);
    const { prompts } = await lister.listPrompts();
    const short = prompts.map((p) => p.name).find((n) => n.startsWith(`${server}__condense`));
    expect(short).toBeDefined();
    expect(short!.length).toBeLessThanOrEqual(64);
    expect(short).not.toBe(`${server}__${prefix}0`);
    await first.stop();

    const second = await startGateway({ servers });
    const c = await connectClient(second.mcpUrl);
    const got = await c.getPrompt({ name: short! });
    expect(got.messages[0]?.content).toMatchObject({ type: 'text', text: `${prefix}0` });
    expect((await complete(c, { type: 'ref/prompt', name: short! }, 'text')).completion.values).toEqual([]);
  }, 60_000);
});

describe('one identity per resource for the guards', () => {
  it('counts plain and qualified reads of the same resource as the same call for loop detection', async () => {
    const gw = await startGateway({
      servers: { alpha: fixtureManifest(), beta: fixtureManifest() },
      agents: { local: { id: 'local', tools: { allow: ['*'] }, resources: { allow: ['*'] }, limits: { loop: { sameCall: 2, windowSeconds: 600 } } } },
    });
    const c = await connectClient(gw.mcpUrl);
    await c.readResource({ uri: HELLO });
    await c.readResource({ uri: `switchyard+alpha:${HELLO}` });
    const third = await rpcError(c.readResource({ uri: HELLO }));
    expect(third.message).toMatch(/loop/i);
  }, 60_000);
});

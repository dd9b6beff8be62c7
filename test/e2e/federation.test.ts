// Federation through a real gateway process: merged, prefixed lists from server-everything, the feature fixture,
// server-memory and server-filesystem; routing of calls; the single-server view; pagination; pass-through.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  EVERYTHING,
  FILESYSTEM,
  MEMORY,
  allTools,
  connectClient,
  fixtureManifest,
  rawRequest,
  rawSession,
  scratch,
  startGateway,
  stopAll,
  textOf,
  type RunningGateway,
} from '../helpers/gateway.js';

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const LooseList = z.object({ tools: z.array(z.record(z.unknown())), nextCursor: z.string().optional() }).passthrough();

let gw: RunningGateway;
let client: Client;
const files = scratch('switchyard-fs-');

beforeAll(async () => {
  mkdirSync(join(files, 'docs'), { recursive: true });
  writeFileSync(join(files, 'docs', 'note.txt'), 'filesystem through the gateway\n');
  gw = await startGateway({
    servers: {
      everything: { command: 'node', args: [EVERYTHING, 'stdio'] },
      fx: fixtureManifest(),
      memory: { command: 'node', args: [MEMORY], env: { MEMORY_FILE_PATH: join(files, 'memory.jsonl') }, session: 'shared' },
      files: { command: 'node', args: [FILESYSTEM, files] },
      // JSON manifest in the Claude Desktop shape, to cover that loader path end to end.
      'paged.json': { mcpServers: { paged: fixtureManifest({}, ['--tools', '30', '--page-size', '7']) } },
    },
    // Upstream sessions start on the client's first list: it waits for five servers starting at once.
    gatewayYaml: { listTimeoutMs: 20_000 },
  });
  client = await connectClient(gw.mcpUrl, {
    handlers: {
      sampling: () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'ok' } }),
      elicitation: () => ({ action: 'decline' }),
      roots: () => ({ roots: [] }),
    },
  });
}, 90_000);

afterAll(stopAll);

describe('merged lists', () => {
  it('lists tools of every server with {server}__ prefixes, all within the name pattern', async () => {
    const tools = await allTools(client, 100);
    const names = tools.map((t) => t.name);
    for (const n of names) expect(n).toMatch(NAME_RE);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum', 'fx__echo', 'fx__slow', 'memory__create_entities', 'memory__read_graph', 'files__list_directory', 'paged__extra_0']));
    // server-everything lists its capability-dependent tools only to clients that declared the capability.
    expect(names).toContain('everything__trigger-sampling-request');
    expect(new Set(names).size).toBe(names.length);
  });

  it('lists prompts, resources and resource templates from several servers', async () => {
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(expect.arrayContaining(['everything__simple-prompt', 'fx__greet', 'fx__simple']));
    for (const p of prompts) expect(p).toMatch(NAME_RE);

    const resources: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listResources(cursor ? { cursor } : {});
      resources.push(...page.resources.map((r) => r.uri));
      cursor = page.nextCursor;
    } while (cursor);
    expect(resources).toContain('fixture://static/hello');
    expect(resources.some((u) => u.startsWith('demo://resource/'))).toBe(true);

    const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    expect(templates).toContain('fixture://items/{id}');
    expect(templates.some((t) => t.startsWith('demo://resource/dynamic/'))).toBe(true);
  });

  it('routes calls, prompts and resource reads to the right upstream', async () => {
    const r1 = await client.callTool({ name: 'everything__echo', arguments: { message: 'hi everything' } });
    expect(textOf(r1)).toContain('hi everything');
    const r2 = await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 40 } });
    expect(textOf(r2)).toContain('42');
    const r3 = await client.callTool({ name: 'paged__extra_29', arguments: {} });
    expect(textOf(r3)).toBe('extra_29');

    const prompt = await client.getPrompt({ name: 'fx__greet', arguments: { name: 'Ada' } });
    expect(JSON.stringify(prompt.messages)).toContain('Ada');
    const everythingPrompt = await client.getPrompt({ name: 'everything__simple-prompt' });
    expect(everythingPrompt.messages.length).toBeGreaterThan(0);

    const hello = await client.readResource({ uri: 'fixture://static/hello' });
    expect(hello.contents[0]).toMatchObject({ text: 'Hello from the feature fixture.' });
    const item = await client.readResource({ uri: 'fixture://items/7' });
    expect(JSON.parse(String((item.contents[0] as { text: string }).text))).toEqual({ id: '7' });
    const dyn = await client.readResource({ uri: 'demo://resource/dynamic/text/1' });
    expect(dyn.contents.length).toBeGreaterThan(0);
  });

  it('completes prompt arguments through the prefixed name', async () => {
    const res = await client.complete({ ref: { type: 'ref/prompt', name: 'fx__greet' }, argument: { name: 'name', value: 'Al' } });
    expect(res.completion.values.sort()).toEqual(['Alan', 'Alice']);
  });

  it('answers an unknown tool with -32602, not a success', async () => {
    await expect(client.callTool({ name: 'fx__no_such_tool', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    await expect(client.callTool({ name: 'nosuchserver__echo', arguments: {} })).rejects.toMatchObject({ code: -32602 });
  });
});

describe('single-server view /servers/{name}/mcp', () => {
  it('shows one upstream with its own unprefixed names and routes calls', async () => {
    const single = await connectClient(gw.serverUrl('fx'));
    expect(single.getServerVersion()?.name).toBe('feature-server');
    const names = (await allTools(single, 100)).map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).toContain('whoami');
    expect(names.some((n) => n.includes('__'))).toBe(false);
    expect(names.some((n) => n.startsWith('extra_'))).toBe(false); // the other servers are not in view
    const r = await single.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
    expect(textOf(r)).toContain('3');
    const prompts = (await single.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toContain('greet');
    await single.close();
  });

  it('answers 404 for a server that does not exist', async () => {
    const res = await fetch(gw.serverUrl('nope'), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(res.status).toBe(404);
    await res.text();
  });
});

describe('pagination', () => {
  it('reaches every tool of every upstream page exactly once by following nextCursor', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      seen.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(pages).toBeGreaterThanOrEqual(5); // the paged upstream alone needs ceil((30 + fixture tools) / 7) pages
    const extras = seen.filter((n) => n.startsWith('paged__extra_'));
    expect(extras.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `paged__extra_${i}`).sort());
    expect(new Set(seen).size).toBe(seen.length);
    // The other servers appear too, once each.
    expect(seen.filter((n) => n === 'fx__echo')).toHaveLength(1);
    expect(seen.filter((n) => n === 'everything__echo')).toHaveLength(1);
  });

  it('answers a garbage cursor with -32602', async () => {
    await expect(client.listTools({ cursor: 'not-a-cursor!!' })).rejects.toMatchObject({ code: -32602 });
    await expect(client.listPrompts({ cursor: 'eyJ4IjoxfQ' })).rejects.toMatchObject({ code: -32602 });
  });
});

describe('pass-through', () => {
  it('relays request _meta to the upstream and result _meta back', async () => {
    const res = await client.request(
      { method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'meta' }, _meta: { 'example.com/trace': 'abc', custom: { n: 1 } } } },
      CallToolResultSchema,
    );
    const received = (res._meta as { received?: Record<string, unknown> } | undefined)?.received;
    expect(received).toMatchObject({ 'example.com/trace': 'abc', custom: { n: 1 } });
    expect(res.structuredContent).toEqual({ text: 'meta' });
  });

  it('keeps unknown fields of tool definitions (x-extra) in the list', async () => {
    let cursor: string | undefined;
    let echo: Record<string, unknown> | undefined;
    do {
      const page = await client.request({ method: 'tools/list', params: cursor ? { cursor } : {} }, LooseList);
      echo ??= page.tools.find((t) => t.name === 'fx__echo');
      cursor = page.nextCursor;
    } while (cursor && !echo);
    expect(echo).toBeDefined();
    expect(echo!['x-extra']).toBe(1);
    expect(echo!.outputSchema).toBeDefined();
  });

  it('relays structured content of an everything tool with an outputSchema', async () => {
    const res = await client.callTool({ name: 'everything__get-structured-content', arguments: { location: 'New York' } });
    expect(res.structuredContent).toBeDefined();
  });

  it('relays tool errors as they are: isError results and JSON-RPC errors with their data', async () => {
    const failed = await client.callTool({ name: 'fx__fail', arguments: {} });
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toBe('fixture failure');
    const err = await client.callTool({ name: 'fx__throw_error', arguments: {} }).then((r) => r, (e: unknown) => e);
    expect(err).toMatchObject({ code: -32603, data: { fixture: true } });
  });

  it('keeps raw JSON-RPC ids of the client on the answer (string ids too)', async () => {
    const sid = await rawSession(gw.mcpUrl);
    const res = await rawRequest(gw.mcpUrl, sid, 'tools/call', { name: 'fx__add', arguments: { a: 1, b: 1 } }, 'my-string-id');
    expect(res.id).toBe('my-string-id');
    expect(JSON.stringify(res.result)).toContain('2');
  });
});

describe('real reference servers', () => {
  it('server-memory: create_entities then read_graph', async () => {
    const entity = `e2e-${Date.now()}`;
    const created = await client.callTool({
      name: 'memory__create_entities',
      arguments: { entities: [{ name: entity, entityType: 'test', observations: ['made through the gateway'] }] },
    });
    expect(created.isError).toBeFalsy();
    const graph = await client.callTool({ name: 'memory__read_graph', arguments: {} });
    expect(JSON.stringify(graph.content)).toContain(entity);
    // A second client shares the memory server (session: shared, one file): it sees the entity too.
    const other = await connectClient(gw.mcpUrl);
    const graph2 = await other.callTool({ name: 'memory__read_graph', arguments: {} });
    expect(JSON.stringify(graph2.content)).toContain(entity);
    await other.close();
  });

  it('server-filesystem: list_directory and read_text_file over a temp dir', async () => {
    const listing = await client.callTool({ name: 'files__list_directory', arguments: { path: join(files, 'docs') } });
    expect(listing.isError).toBeFalsy();
    expect(textOf(listing)).toContain('note.txt');
    const read = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(files, 'docs', 'note.txt') } });
    expect(textOf(read)).toContain('filesystem through the gateway');
    // Outside the allowed directory: the server's own error comes back as a tool error, not as a gateway failure.
    const outside = await client.callTool({ name: 'files__read_text_file', arguments: { path: '/etc/hostname' } });
    expect(outside.isError).toBe(true);
  });
});

describe('shortened names (longer than 64 characters as {server}__{name})', () => {
  // 32 characters, the longest server name allowed: server-everything's 'trigger-elicitation-request-async'
  // would be 67 characters once prefixed, so the gateway must shorten it.
  const server = 'everything-with-a-long-name-0001';
  const longTool = 'trigger-elicitation-request-async';
  const servers = { [server]: { command: 'node', args: [EVERYTHING, 'stdio'] } };
  // server-everything lists that tool only to clients that can take elicitation as a task.
  const capabilities = { elicitation: { form: {} }, tasks: { requests: { elicitation: { create: {} } } } };

  /** Call `name` until the upstream asks this client for elicitation (proof the call was routed), then abandon it. */
  async function reachesUpstream(url: string, name: string): Promise<true> {
    let asked!: () => void;
    const elicited = new Promise<true>((r) => (asked = () => r(true)));
    const c = await connectClient(url, { capabilities, handlers: {} });
    c.setRequestHandler(ElicitRequestSchema, () => {
      asked();
      return { action: 'decline' };
    });
    const ac = new AbortController();
    const call = c.callTool({ name, arguments: {} }, undefined, { signal: ac.signal }).then(
      () => 'answered' as const,
      (e: { code?: number; message?: string }) => (e.code === -32602 ? `unknown: ${e.message}` : ('failed' as const)),
    );
    const outcome = await Promise.race([elicited, call]);
    ac.abort();
    await c.close();
    if (typeof outcome === 'string' && outcome.startsWith('unknown')) throw new Error(`the gateway did not route ${name}: ${outcome}`);
    return true;
  }

  it('exposes the long name shortened within the pattern, and routes it, also after a gateway restart', async () => {
    const first = await startGateway({ servers });
    const lister = await connectClient(first.mcpUrl, { capabilities, handlers: {} });
    const names = (await allTools(lister, 100)).map((t) => t.name);
    await lister.close();
    for (const n of names) expect(n).toMatch(NAME_RE);
    expect(names).not.toContain(`${server}__${longTool}`);
    const short = names.find((n) => n.startsWith(`${server}__trigger-elicitation`) && n !== `${server}__trigger-elicitation-request`);
    expect(short).toBeDefined();
    expect(short!.length).toBeLessThanOrEqual(64);
    expect(await reachesUpstream(first.mcpUrl, short!).catch((e: Error) => `first gateway: ${e.message}`)).toBe(true);
    await first.stop();

    // A client that kept the name calls it on a freshly started gateway, before anyone listed tools there.
    const second = await startGateway({ servers });
    expect(await reachesUpstream(second.mcpUrl, short!).catch((e: Error) => `restarted gateway: ${e.message}`)).toBe(true);
    await second.stop();
  }, 60_000);
});

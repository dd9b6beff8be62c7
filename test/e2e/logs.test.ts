// What an operator reads in the gateway's log, and VS Code client configs dropped into servers.d as they are.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectClient, fixtureManifest, startGateway, stopAll, waitFor, whoami } from '../helpers/gateway.js';

afterAll(stopAll);

/** Top-level keys of a JSON line as written, repeats included (JSON.parse would keep only the last). */
function rawKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"(\s*:)?|[{}[\]]/g)) {
    if (m[0] === '{' || m[0] === '[') depth++;
    else if (m[0] === '}' || m[0] === ']') depth--;
    else if (m[2] && depth === 1) keys.push(m[1]!);
  }
  return keys;
}

describe('gateway log lines', () => {
  it("upstream lines carry 'server' once, a reload is one line, and a renamed server name is a warning", async () => {
    const noisy = { command: 'node', args: ['-e', 'process.stdout.write("not json\\n"); setInterval(() => {}, 1000)'] };
    const gw = await startGateway({ servers: { noisy, fx: fixtureManifest() } });
    const rawLines = () => gw.logs.filter((l) => l.startsWith('{'));
    await waitFor(() => rawLines().some((l) => l.includes('non-JSON line')), { what: 'the non-JSON stdout warning', timeoutMs: 20_000 });
    const upstreamLines = rawLines().filter((l) => l.includes('"server":'));
    expect(upstreamLines.length).toBeGreaterThan(0);
    for (const l of rawLines()) {
      const keys = rawKeys(l);
      expect(keys, l).toEqual([...new Set(keys)]);
    }

    gw.writeServer('Weather_API.yaml', fixtureManifest());
    await waitFor(() => gw.logRecords().some((r) => /^servers reloaded/.test(String(r.msg))), { what: 'the reload line' });
    const c = await connectClient(gw.mcpUrl);
    await waitFor(async () => (await c.listTools()).tools.some((t) => t.name === 'weather-api__echo'), { what: 'the renamed server' });
    const records = gw.logRecords();
    expect(records.filter((r) => /reloaded/.test(String(r.msg)))).toHaveLength(1);
    expect(records.filter((r) => String(r.msg).includes('Weather_API'))).toEqual([
      expect.objectContaining({ level: 40, msg: expect.stringContaining("is used as server name 'weather-api'") }),
    ]);
    await gw.stop();
  });
});

describe('VS Code mcp.json as a drop-in', () => {
  it("starts a stdio server with the variables of its envFile, relative to the file's folder", async () => {
    const entry = { servers: { fx: { type: 'stdio', command: 'node', args: ['test/fixtures/feature-server.mjs'], envFile: 'fx.env' } } };
    const gw = await startGateway({ servers: { 'mcp.json': { inputs: [], ...entry } } });
    // The env file is missing at first: a problem naming it. It is read again when the manifest changes.
    expect(gw.logRecords().some((r) => String(r.msg).includes('envFile: cannot read') && String(r.msg).includes('fx.env'))).toBe(true);
    writeFileSync(join(gw.serversDir, 'fx.env'), '# written by the editor\nFIXTURE_NAME=from-env-file\n');
    gw.writeServer('mcp.json', entry);
    const c = await connectClient(gw.mcpUrl);
    await waitFor(async () => (await c.listTools()).tools.some((t) => t.name === 'fx__whoami'), { what: 'the fx server', timeoutMs: 15_000 });
    expect((await whoami(c, 'fx')).serverName).toBe('from-env-file');
    await gw.stop();
  });
});

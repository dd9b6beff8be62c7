import { Writable } from 'node:stream';
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigWatcher, manifestFingerprint, type AgentsChange, type ConfigWatcherOptions, type ServersChange } from '../../src/config/watch.js';
import { HASH_A, nextEvent, tempDir, type TempDir } from './helpers.js';

let dir: TempDir;
let watcher: ConfigWatcher | undefined;
let logLines: string[];

function start(extra: Partial<ConfigWatcherOptions> = {}): ConfigWatcher {
  logLines = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  watcher = new ConfigWatcher({
    serversDir: dir.path('servers.d'),
    agentsDir: dir.path('agents.d'),
    logger: pino({ level: 'info' }, sink),
    env: { TOKEN: 't' },
    workspaceDir: dir.root,
    ...extra,
  });
  return watcher;
}

const serversEvent = (w: ConfigWatcher, accept: (c: ServersChange) => boolean) => nextEvent<ServersChange>(w, 'servers', accept);
const agentsEvent = (w: ConfigWatcher, accept: (c: AgentsChange) => boolean) => nextEvent<AgentsChange>(w, 'agents', accept);

beforeEach(() => {
  dir = tempDir();
  dir.write('servers.d/alpha.yaml', 'command: node\nargs: [alpha.js]\n');
  dir.write('servers.d/beta.yaml', 'url: https://beta.example.com/mcp\n');
  dir.write('agents.d/bot.yaml', 'tools: { allow: ["alpha__*"] }\n');
});
afterEach(() => {
  watcher?.close();
  watcher = undefined;
  dir.remove();
});

describe('ConfigWatcher', () => {
  it('loads both directories at construction', () => {
    const w = start();
    expect([...w.servers.keys()]).toEqual(['alpha', 'beta']);
    expect([...w.agents.keys()]).toEqual(['bot']);
    expect(w.problems).toEqual([]);
  });

  it('logs each reload once, the first read not as a reload, and a renamed default name as a warning', async () => {
    const w = start();
    expect(logLines.join('')).not.toMatch(/reloaded/);
    const added = serversEvent(w, (c) => c.added.some((s) => s.name === 'weather-api'));
    dir.write('servers.d/Weather_API.yaml', 'command: node\n');
    await added;
    const records = logLines.map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(records.filter((r) => /reloaded/.test(r.msg))).toEqual([expect.objectContaining({ level: 30, msg: expect.stringMatching(/^servers reloaded from /) })]);
    expect(records.filter((r) => r.msg.includes('Weather_API'))).toEqual([
      expect.objectContaining({ level: 40, msg: expect.stringContaining("is used as server name 'weather-api'; add 'name: weather-api'") }),
    ]);
  });

  it('sees a server added, changed and removed within 2 s', async () => {
    const w = start();
    const added = serversEvent(w, (c) => c.added.some((s) => s.name === 'gamma'));
    dir.write('servers.d/gamma.json', '{"command": "node", "env": {"T": "${TOKEN}"}}');
    const a = await added;
    expect(a.added.map((s) => s.name)).toEqual(['gamma']);
    expect(a.added[0].env).toEqual({ T: 't' });
    expect(a.changed).toEqual([]);
    expect(a.removed).toEqual([]);
    expect([...a.servers.keys()].sort()).toEqual(['alpha', 'beta', 'gamma']);

    const changed = serversEvent(w, (c) => c.changed.some((s) => s.name === 'gamma'));
    dir.write('servers.d/gamma.json', '{"command": "node", "args": ["v2.js"]}');
    expect((await changed).changed[0].args).toEqual(['v2.js']);

    const removed = serversEvent(w, (c) => c.removed.includes('gamma'));
    rmSync(dir.path('servers.d/gamma.json'));
    const r = await removed;
    expect(r.removed).toEqual(['gamma']);
    expect(w.servers.has('gamma')).toBe(false);
  });

  it('a broken file keeps its last good version; other files are untouched and still reload', async () => {
    const w = start();
    const alphaBefore = w.servers.get('alpha');
    const betaBefore = w.servers.get('beta');

    const broken = serversEvent(w, (c) => c.problems.length > 0);
    dir.write('servers.d/alpha.yaml', 'command: node\nargs: [alpha.js\n');
    const b = await broken;
    expect(b.added).toEqual([]);
    expect(b.changed).toEqual([]);
    expect(b.removed).toEqual([]);
    expect(b.problems[0]).toMatchObject({ file: dir.path('servers.d/alpha.yaml'), line: 3 });
    expect(w.servers.get('alpha')).toBe(alphaBefore);
    expect(w.servers.get('beta')).toBe(betaBefore);
    expect(logLines.join('')).toMatch(/alpha\.yaml:3: YAML syntax/);

    const betaChanged = serversEvent(w, (c) => c.changed.some((s) => s.name === 'beta'));
    dir.write('servers.d/beta.yaml', 'url: https://beta.example.com/mcp\ntimeoutMs: 5000\n');
    const c = await betaChanged;
    expect(c.changed.map((s) => s.name)).toEqual(['beta']);
    expect(w.servers.get('beta')?.timeoutMs).toBe(5000);
    expect(w.servers.get('alpha')).toBe(alphaBefore);
    expect(c.problems).toHaveLength(1);

    const fixed = serversEvent(w, (ch) => ch.problems.length === 0);
    dir.write('servers.d/alpha.yaml', 'command: node\nargs: [alpha2.js]\n');
    const f = await fixed;
    expect(f.changed.map((s) => s.name)).toEqual(['alpha']);
    expect(w.servers.get('alpha')?.args).toEqual(['alpha2.js']);
  });

  it('a name claimed by a new file stays with the file that already owns it', async () => {
    const w = start();
    const clash = serversEvent(w, (c) => c.problems.length > 0);
    dir.write('servers.d/000-first.yaml', 'name: alpha\ncommand: deno\n');
    const c = await clash;
    expect(c.problems[0]).toMatchObject({ file: dir.path('servers.d/000-first.yaml'), line: 1 });
    expect(w.servers.get('alpha')?.command).toBe('node');
    expect(c.changed).toEqual([]);
  });

  it('moving lines within a file is not a change', async () => {
    const w = start();
    const alpha = w.servers.get('alpha');
    if (!alpha) throw new Error('alpha missing');
    const moved = { ...alpha, source: { ...alpha.source, line: 7 } };
    expect(manifestFingerprint(moved)).toBe(manifestFingerprint(alpha));
    const next = serversEvent(w, (c) => c.added.length > 0);
    dir.write('servers.d/alpha.yaml', '# comment pushes the manifest down\n\ncommand: node\nargs: [alpha.js]\n');
    dir.write('servers.d/delta.yaml', 'command: node\n');
    const c = await next;
    expect(c.added.map((s) => s.name)).toEqual(['delta']);
    expect(c.changed).toEqual([]);
  });

  it('agents: add, change, remove, and a broken file keeps its last good version', async () => {
    const w = start();
    const added = agentsEvent(w, (c) => c.added.includes('ops'));
    dir.write('agents.d/ops.yaml', `credentials: { apiKeys: ["${HASH_A}"] }\ntools: { allow: ["*"] }\n`);
    const a = await added;
    expect(a.agents.get('ops')?.credentials.apiKeys).toEqual([HASH_A]);

    const broken = agentsEvent(w, (c) => c.problems.length > 0);
    dir.write('agents.d/ops.yaml', 'tools: { allow: ["*"] }\ntypo: 1\n');
    const b = await broken;
    expect(b.problems[0]).toMatchObject({ line: 2, message: expect.stringMatching(/unknown field 'typo'/) });
    expect(w.agents.get('ops')?.credentials.apiKeys).toEqual([HASH_A]);

    const changed = agentsEvent(w, (c) => c.changed.includes('bot'));
    dir.write('agents.d/bot.yaml', 'tools: { allow: ["beta__*"] }\n');
    expect((await changed).agents.get('bot')?.tools.allow).toEqual(['beta__*']);

    const removed = agentsEvent(w, (c) => c.removed.includes('ops'));
    rmSync(dir.path('agents.d/ops.yaml'));
    const r = await removed;
    expect([...r.agents.keys()]).toEqual(['bot']);
    expect(r.problems).toEqual([]);
  });

  it('polling alone sees changes within 2 s, including a directory created later', async () => {
    dir.remove();
    dir = tempDir();
    const w = start({ fsWatch: false });
    expect(w.servers.size).toBe(0);
    const added = serversEvent(w, (c) => c.added.length > 0);
    dir.write('servers.d/late.yaml', 'command: node\n');
    expect((await added).added.map((s) => s.name)).toEqual(['late']);

    const changed = serversEvent(w, (c) => c.changed.length > 0);
    dir.write('servers.d/late.yaml', 'command: node\nargs: [--verbose]\n');
    expect((await changed).changed[0].args).toEqual(['--verbose']);
  });
});

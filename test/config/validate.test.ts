import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyConfigFile, validatePaths } from '../../src/config/validate.js';
import { loadServersDir } from '../../src/config/servers.js';
import { loadAgentsDir } from '../../src/config/agents.js';
import { HASH_A, tempDir, type TempDir } from './helpers.js';

let dir: TempDir;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

describe('validatePaths', () => {
  it('with no paths checks ./gateway.yaml and the directories it names', () => {
    dir.write('gateway.yaml', 'serversDir: upstreams\nagentsDir: identities\n');
    dir.write('upstreams/a.yaml', 'command: node\n');
    dir.write('upstreams/b.yaml', 'command: node\nbogus: 1\n');
    dir.write('identities/ops.yaml', `credentials: { apiKeys: ["${HASH_A}"] }\n`);
    const r = validatePaths([], { cwd: dir.root, env: {} });
    expect(r.report).toEqual(["upstreams/b.yaml:2: unknown field 'bogus'; remove it or check its spelling"]);
    expect(r.servers.map((s) => s.name)).toEqual(['a']);
    expect(r.agents.map((a) => a.id)).toEqual(['ops']);
    expect(r.gateway?.serversDir).toBe(dir.path('upstreams'));
    expect(r.files.map((f) => [f.file.slice(dir.root.length + 1), f.kind])).toEqual([
      ['gateway.yaml', 'gateway'],
      ['upstreams/a.yaml', 'server'],
      ['upstreams/b.yaml', 'server'],
      ['identities/ops.yaml', 'agent'],
    ]);
  });

  it('with no gateway.yaml falls back to ./servers.d and ./agents.d', () => {
    dir.write('servers.d/a.yaml', 'command: node\n');
    dir.write('agents.d/x.yaml', 'tools: { allow: 1 }\n');
    const r = validatePaths([], { cwd: dir.root, env: {} });
    expect(r.report).toEqual(["agents.d/x.yaml:1: tools.allow: expected array, got number; change the value's type"]);
    expect(r.gateway).toBeUndefined();
    expect(r.servers).toHaveLength(1);
  });

  it('classifies loose files by name, directory and content', () => {
    expect(classifyConfigFile('/x/gateway.yaml', {})).toBe('gateway');
    expect(classifyConfigFile('/x/agents.d/a.yaml', { command: 'node' })).toBe('agent');
    expect(classifyConfigFile('/x/servers.d/a.yaml', { id: 'x' })).toBe('server');
    expect(classifyConfigFile('/x/a.yaml', { id: 'x' })).toBe('agent');
    expect(classifyConfigFile('/x/a.yaml', { credentials: {} })).toBe('agent');
    expect(classifyConfigFile('/x/a.yaml', { command: 'node' })).toBe('server');
  });

  it('checks explicit files and directories, and duplicates across them', () => {
    dir.write('one/a.yaml', 'name: same\ncommand: node\n');
    dir.write('two/b.json', '{\n  "name": "same",\n  "url": "https://x.example"\n}');
    dir.write('loose-agent.yaml', 'id: bot\nowner: [not, a, string]\n');
    const r = validatePaths(['one', 'two/b.json', 'loose-agent.yaml', 'missing.yaml'], { cwd: dir.root, env: {} });
    expect(r.report).toEqual([
      "loose-agent.yaml:2: owner: expected string, got array; change the value's type",
      'missing.yaml:1: no such file or directory; check the path',
      expect.stringMatching(/^two\/b\.json:1: server name 'same' is already used by .*one\/a\.yaml:1/),
    ]);
    expect(r.problems).toHaveLength(3);
  });

  it('a broken gateway.yaml does not hide the problems of the manifests it names', () => {
    dir.write('gateway.yaml', 'port: "x"\nserversDir: upstreams\n');
    dir.write('upstreams/a.yaml', 'command: node\nbogus: 1\n');
    expect(validatePaths([], { cwd: dir.root, env: {} }).report).toEqual([
      "gateway.yaml:1: port: expected number, got string; change the value's type",
      "upstreams/a.yaml:2: unknown field 'bogus'; remove it or check its spelling",
    ]);
  });

  it('reports a broken gateway.yaml', () => {
    dir.write('gateway.yaml', 'port: "x"\n');
    expect(validatePaths(['gateway.yaml'], { cwd: dir.root, env: {} }).report).toEqual([
      "gateway.yaml:1: port: expected number, got string; change the value's type",
    ]);
  });
});

describe('shipped examples', () => {
  const repo = fileURLToPath(new URL('../../', import.meta.url));

  it('servers.d loads without problems and runs the installed packages whatever the working directory', () => {
    const { servers, problems } = loadServersDir(`${repo}servers.d`, {}, { workspaceDir: dir.root, dataDir: dir.path('state') });
    expect(problems).toEqual([]);
    expect(servers.get('everything')).toMatchObject({
      transport: 'stdio',
      command: 'node',
      args: ['node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'stdio'],
    });
    expect(servers.get('memory')?.env.MEMORY_FILE_PATH).toBe(dir.path('state/memory.jsonl'));
    for (const s of servers.values()) {
      expect(s.cwd).toBe(repo.replace(/\/$/, ''));
      expect(existsSync(join(s.cwd!, String(s.args[0])))).toBe(true);
    }
  });

  it('agents.d holds no agent by default, so the loopback agent is unrestricted', () => {
    expect(loadAgentsDir(`${repo}agents.d`)).toMatchObject({ problems: [] });
    expect(loadAgentsDir(`${repo}agents.d`).agents.size).toBe(0);
  });
});

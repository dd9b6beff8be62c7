import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadServerFile, loadServersDir } from '../../src/config/servers.js';
import { tempDir, type TempDir } from './helpers.js';

let dir: TempDir;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

const problemsOf = (file: string, env: Record<string, string> = {}) =>
  loadServerFile(file, { env, workspaceDir: dir.root }).problems.map((p) => [p.line, p.message]);

describe('servers.d: valid manifests', () => {
  it('loads a YAML stdio manifest with defaults and the file stem as name', () => {
    const file = dir.write('servers.d/github.yaml', 'command: npx\nargs: ["-y", "server-github"]\nenv:\n  PORT: 8080\n');
    const { servers, problems } = loadServerFile(file, { env: {}, workspaceDir: dir.root });
    expect(problems).toEqual([]);
    expect(servers).toEqual([
      {
        name: 'github',
        transport: 'stdio',
        command: 'npx',
        args: ['-y', 'server-github'],
        env: { PORT: '8080' },
        cwd: dir.root,
        headers: {},
        tools: { include: ['*'], exclude: [] },
        timeoutMs: 60000,
        connectTimeoutMs: 30000,
        idleSeconds: 600,
        breaker: { failures: 5, cooldownSeconds: 10 },
        session: 'per-client',
        required: false,
        source: { file, line: 1 },
      },
    ]);
  });

  it('loads a JSON manifest and infers http from url, sse from a /sse url', () => {
    dir.write('servers.d/remote.json', '{\n  "url": "https://example.com/mcp",\n  "headers": {"Authorization": "Bearer x"},\n  "identity": "jwt"\n}\n');
    dir.write('servers.d/legacy.json', '{ "url": "http://127.0.0.1:9000/sse/" }');
    dir.write('servers.d/agent.yaml', 'transport: a2a\nurl: https://agents.example.com/.well-known/agent-card.json\nrequired: true\n');
    const { servers, problems } = loadServersDir(dir.path('servers.d'), {});
    expect(problems).toEqual([]);
    expect(servers.get('remote')).toMatchObject({ transport: 'http', url: 'https://example.com/mcp', headers: { Authorization: 'Bearer x' }, identity: 'jwt' });
    expect(servers.get('remote')?.cwd).toBeUndefined();
    expect(servers.get('legacy')?.transport).toBe('sse');
    expect(servers.get('agent')).toMatchObject({ transport: 'a2a', required: true });
  });

  it('reads a Claude Desktop mcpServers map, folding names and skipping disabled entries', () => {
    const file = dir.write(
      'servers.d/claude_desktop_config.json',
      JSON.stringify(
        {
          globalShortcut: 'Ctrl+Space',
          mcpServers: {
            filesystem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'] },
            My_Search: { command: 'node', args: ['search.js'], env: { KEY: 'k' } },
            off: { command: 'node', disabled: true },
          },
        },
        null,
        2,
      ),
    );
    const { servers, problems } = loadServerFile(file, { env: {}, workspaceDir: dir.root });
    expect(problems).toEqual([]);
    expect(servers.map((s) => [s.name, s.transport, s.source.line])).toEqual([
      ['filesystem', 'stdio', 4],
      ['my-search', 'stdio', 12],
    ]);
  });

  it('reads a VS Code servers map with type and JSONC comments', () => {
    const file = dir.write(
      'servers.d/mcp.json',
      [
        '{',
        '  // VS Code keeps inputs next to servers',
        '  "inputs": [],',
        '  "servers": {',
        '    "api": { "type": "http", "url": "https://api.example.com/sse" }, /* explicit type wins over /sse */',
        '    "events": { "type": "sse", "url": "https://api.example.com/events" },',
        '    "local": { "type": "stdio", "command": "node", "args": ["x.js"], },',
        '  }',
        '}',
      ].join('\n'),
    );
    const { servers, problems } = loadServerFile(file, { env: {}, workspaceDir: dir.root });
    expect(problems).toEqual([]);
    expect(servers.map((s) => [s.name, s.transport, s.source.line])).toEqual([
      ['api', 'http', 5],
      ['events', 'sse', 6],
      ['local', 'stdio', 7],
    ]);
  });

  it("resolves a relative cwd from the manifest's folder, and an absent one is the gateway working directory", () => {
    const file = dir.write('servers.d/a.yaml', 'command: node\ncwd: tools\n');
    expect(loadServerFile(file, { env: {}, workspaceDir: dir.path('elsewhere') }).servers[0].cwd).toBe(dir.path('servers.d/tools'));
    const parent = dir.write('servers.d/b.yaml', 'command: node\ncwd: ..\n');
    expect(loadServerFile(parent, { env: {}, workspaceDir: dir.path('elsewhere') }).servers[0].cwd).toBe(dir.root);
    const none = dir.write('servers.d/c.yaml', 'command: node\n');
    expect(loadServerFile(none, { env: {}, workspaceDir: dir.path('elsewhere') }).servers[0].cwd).toBe(dir.path('elsewhere'));
  });
});

describe('servers.d: interpolation', () => {
  it('expands ${VAR}, ${VAR:-fallback}, ${env:VAR}, ${file:…}, ${workspaceFolder} and $${', () => {
    dir.write('servers.d/secrets/token.txt', 's3cret\n');
    const file = dir.write(
      'servers.d/gh.yaml',
      [
        'url: "${BASE}/mcp"',
        'headers:',
        '  Authorization: "Bearer ${file:secrets/token.txt}"',
        '  X-Team: "${TEAM:-core}"',
        '  X-Env: "${env:BASE}"',
        '  X-Dir: "${workspaceFolder}/data"',
        '  X-Literal: "$${NOT_EXPANDED}"',
      ].join('\n'),
    );
    const { servers, problems } = loadServerFile(file, { env: { BASE: 'https://gh.example.com' }, workspaceDir: dir.root });
    expect(problems).toEqual([]);
    expect(servers[0].url).toBe('https://gh.example.com/mcp');
    expect(servers[0].headers).toEqual({
      Authorization: 'Bearer s3cret',
      'X-Team': 'core',
      'X-Env': 'https://gh.example.com',
      'X-Dir': `${dir.root}/data`,
      'X-Literal': '${NOT_EXPANDED}',
    });
  });

  it('expands ${dataDir} to the gateway data directory, defaulting to data under the working directory', () => {
    const file = dir.write('servers.d/m.yaml', 'command: node\nenv:\n  FILE: "${dataDir}/memory.jsonl"\n');
    expect(loadServerFile(file, { env: {}, workspaceDir: dir.root, dataDir: dir.path('state') }).servers[0].env.FILE).toBe(dir.path('state/memory.jsonl'));
    expect(loadServerFile(file, { env: {}, workspaceDir: dir.root }).servers[0].env.FILE).toBe(dir.path('data/memory.jsonl'));
  });

  it('reports a missing variable and a missing file on their lines', () => {
    const file = dir.write('servers.d/gh.yaml', 'command: node\nenv:\n  A: "${NOPE}"\n  B: "${file:missing.txt}"\n');
    const problems = problemsOf(file);
    expect(problems).toHaveLength(2);
    expect(problems[0][0]).toBe(3);
    expect(problems[0][1]).toMatch(/environment variable NOPE is not set/);
    expect(problems[1][0]).toBe(4);
    expect(problems[1][1]).toMatch(/cannot read .*missing\.txt/);
  });
});

describe('servers.d: problems with exact lines', () => {
  it('unknown field', () => {
    const file = dir.write('servers.d/a.yaml', 'command: node\n\nargs: []\ncomand: x\n');
    expect(problemsOf(file)).toEqual([[4, "unknown field 'comand'; remove it or check its spelling"]]);
  });

  it('unknown nested field and wrong type', () => {
    const file = dir.write('servers.d/a.yaml', 'command: node\ntools:\n  include: ["*"]\n  exclud: []\ntimeoutMs: soon\n');
    expect(problemsOf(file)).toEqual([
      [4, "unknown field 'exclud' in 'tools'; remove it or check its spelling"],
      [5, "timeoutMs: expected number, got string; change the value's type"],
    ]);
  });

  it('bad enum value and bad name', () => {
    const file = dir.write('servers.d/a.yaml', 'name: Bad_Name\ncommand: node\nsession: global\n');
    const problems = problemsOf(file);
    expect(problems.map((p) => p[0])).toEqual([1, 3]);
    expect(problems[0][1]).toMatch(/name must use lowercase letters/);
    expect(problems[1][1]).toBe("session: 'global' is not one of 'per-client', 'shared'");
  });

  it('broken YAML syntax', () => {
    const file = dir.write('servers.d/a.yaml', 'command: node\nargs: [a, b\nenv: {}\n');
    const problems = problemsOf(file);
    expect(problems[0][0]).toBe(3);
    expect(problems[0][1]).toMatch(/^YAML syntax/);
  });

  it('one YAML mistake is one message, on its line', () => {
    const file = dir.write('servers.d/a.yaml', 'command: node\nargs:\n  - a\n - b\n');
    expect(problemsOf(file)).toEqual([[4, expect.stringMatching(/^YAML syntax: /)]]);
  });

  it('problems across fields are reported together with schema problems, not after they are fixed', () => {
    const file = dir.write('servers.d/a.yaml', 'command: node\nurl: https://x.example\ntimeoutMs: -1\nbogus: 1\n');
    expect(problemsOf(file)).toEqual([
      [2, expect.stringMatching(/both 'command' and 'url'/)],
      [3, expect.stringMatching(/^timeoutMs: /)],
      [4, "unknown field 'bogus'; remove it or check its spelling"],
    ]);
    const badCommand = dir.write('servers.d/b.yaml', 'command: ""\nheaders: {A: b}\n');
    expect(problemsOf(badCommand)).toEqual([
      [1, expect.stringMatching(/command is empty/)],
    ]);
  });

  it('duplicate key in JSON', () => {
    const file = dir.write('servers.d/a.json', '{\n  "command": "node",\n  "command": "deno"\n}\n');
    expect(problemsOf(file)).toEqual([[3, 'YAML syntax: duplicate key; keep only one of them']]);
  });

  it('neither command nor url, and both', () => {
    const none = dir.write('servers.d/none.yaml', '# nothing to start\ntimeoutMs: 5\n');
    expect(problemsOf(none)).toEqual([[2, expect.stringMatching(/missing 'command' .* or 'url'/)]]);
    const both = dir.write('servers.d/both.yaml', 'command: node\nurl: https://x.example\n');
    expect(problemsOf(both)).toEqual([[2, expect.stringMatching(/both 'command' and 'url'/)]]);
  });

  it('fields that do not fit the transport', () => {
    const file = dir.write('servers.d/a.yaml', 'transport: http\nurl: ftp://x\ncommand: node\n');
    expect(problemsOf(file)).toEqual([
      [2, "url must use http or https, not 'ftp:'"],
      [3, expect.stringMatching(/'command' is only used by stdio servers/)],
    ]);
    const stdio = dir.write('servers.d/b.yaml', 'transport: stdio\nheaders: {A: b}\n');
    expect(problemsOf(stdio)).toEqual([
      [1, expect.stringMatching(/stdio server needs 'command'/)],
      [2, expect.stringMatching(/'headers' is not used by stdio servers/)],
    ]);
  });

  it('an unparsable url is reported on its line without echoing it (it may hold a credential)', () => {
    const file = dir.write('servers.d/u.yaml', 'transport: http\nurl: "http://[::1?api_key=s3cr3t"\n');
    expect(problemsOf(file)).toEqual([[2, 'url is not a valid URL; write it as https://host/path']]);
  });

  it('problems inside an mcpServers map point at the entry', () => {
    const file = dir.write('servers.d/claude.json', '{\n  "mcpServers": {\n    "ok": { "command": "node" },\n    "bad": {\n      "command": "node",\n      "autoApprove": []\n    }\n  }\n}\n');
    const { servers, problems } = loadServerFile(file, { env: {}, workspaceDir: dir.root });
    expect(servers.map((s) => s.name)).toEqual(['ok']);
    expect(problems.map((p) => [p.line, p.message])).toEqual([[6, "unknown field 'autoApprove'; remove it or check its spelling"]]);
  });

  it('a file that is not a mapping', () => {
    const file = dir.write('servers.d/a.yaml', '\n- command: node\n');
    expect(problemsOf(file)).toEqual([[2, expect.stringMatching(/expected a mapping/)]]);
  });

  it('an empty file defines nothing and is no problem', () => {
    const file = dir.write('servers.d/a.yaml', '# placeholder\n');
    expect(loadServerFile(file, { env: {} })).toEqual({ servers: [], problems: [], warnings: [] });
  });
});

describe('servers.d: renamed default names', () => {
  it('a file stem or map key folded into a valid name is a warning naming the rename, not a problem', () => {
    const stem = dir.write('servers.d/Weather_API.yaml', 'command: node\n');
    expect(loadServerFile(stem, { env: {}, workspaceDir: dir.root })).toMatchObject({
      servers: [{ name: 'weather-api' }],
      problems: [],
      warnings: [{ file: stem, line: 1, message: "'Weather_API' (the file name) is used as server name 'weather-api'; add 'name: weather-api' to make the rename explicit" }],
    });
    const map = dir.write('servers.d/client.json', '{\n  "mcpServers": {\n    "Weather_API": { "command": "node" },\n    "ok": { "command": "node" }\n  }\n}\n');
    const r = loadServerFile(map, { env: {}, workspaceDir: dir.root });
    expect(r.servers.map((s) => s.name)).toEqual(['weather-api', 'ok']);
    expect(r.warnings).toEqual([{ file: map, line: 3, message: expect.stringContaining("'Weather_API' (the mcpServers key) is used as server name 'weather-api'") }]);
  });

  it('an explicit name or an already valid default says nothing', () => {
    const named = dir.write('servers.d/Weather_API.yaml', 'name: weather\ncommand: node\n');
    expect(loadServerFile(named, { env: {}, workspaceDir: dir.root }).warnings).toEqual([]);
    const plain = dir.write('servers.d/weather.yaml', 'command: node\n');
    expect(loadServerFile(plain, { env: {}, workspaceDir: dir.root }).warnings).toEqual([]);
  });
});

describe('servers.d: envFile', () => {
  it("loads a dotenv file relative to the manifest's folder, merged under env", () => {
    dir.write('servers.d/secrets/.env', '# keys\nexport A=from-file\nB = "two words\\n"\nC=\'single # kept\'\nD=plain # comment\n\n');
    const file = dir.write('servers.d/a.json', '{"servers": {"a": {"type": "stdio", "command": "node", "envFile": "secrets/.env", "env": {"A": "from-env"}}}}');
    const r = loadServerFile(file, { env: {}, workspaceDir: dir.path('elsewhere') });
    expect(r.problems).toEqual([]);
    expect(r.servers[0].env).toEqual({ A: 'from-env', B: 'two words\n', C: 'single # kept', D: 'plain' });
  });

  it('a missing or malformed env file is a problem on the envFile line; a remote server may not have one', () => {
    const missing = dir.write('servers.d/a.yaml', 'command: node\nenvFile: nope.env\n');
    expect(problemsOf(missing)).toEqual([[2, expect.stringMatching(/^envFile: cannot read .*nope\.env \(ENOENT\); create the file or fix the path/)]]);
    dir.write('servers.d/bad.env', 'A=1\nnot a pair\n');
    const bad = dir.write('servers.d/b.yaml', 'command: node\nenvFile: bad.env\n');
    expect(problemsOf(bad)).toEqual([[2, expect.stringMatching(/bad\.env:2: expected KEY=value; write each line as KEY=value$/)]]);
    const remote = dir.write('servers.d/c.yaml', 'url: https://x.example/mcp\nenvFile: bad.env\n');
    expect(problemsOf(remote)).toEqual([[2, expect.stringMatching(/'envFile' is only used by stdio servers/)]]);
  });

  it('protocol: an http server takes either revision; a stdio one is told it is http-only; an unknown revision is a problem', () => {
    const http = dir.write('servers.d/modern.yaml', 'url: https://x.example/mcp\nprotocol: 2026-07-28\n');
    expect(loadServerFile(http, { env: {}, workspaceDir: dir.root }).servers[0]).toMatchObject({ transport: 'http', protocol: '2026-07-28' });
    const auto = dir.write('servers.d/probed.yaml', 'url: https://x.example/mcp\nprotocol: auto\n');
    expect(loadServerFile(auto, { env: {}, workspaceDir: dir.root }).servers[0]).toMatchObject({ transport: 'http', protocol: 'auto' });
    const stdio = dir.write('servers.d/local.yaml', 'command: node\nprotocol: 2026-07-28\n');
    expect(problemsOf(stdio)).toEqual([[2, expect.stringMatching(/'protocol' is only used by http servers/)]]);
    const unknown = dir.write('servers.d/odd.yaml', 'url: https://x.example/mcp\nprotocol: 2030-01-01\n');
    expect(problemsOf(unknown)).toEqual([[2, expect.stringMatching(/protocol/)]]);
  });
});

describe('servers.d: directory', () => {
  it('reports a duplicate name on the second file and keeps the first', () => {
    dir.write('servers.d/a.yaml', 'name: shared\ncommand: node\n');
    const second = dir.write('servers.d/b.yaml', '# same name\nname: shared\ncommand: deno\n');
    const { servers, problems, byFile } = loadServersDir(dir.path('servers.d'), {});
    expect(servers.get('shared')?.command).toBe('node');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: second, line: 2 });
    expect(problems[0].message).toMatch(/server name 'shared' is already used by .*a\.yaml:1/);
    expect([...byFile.keys()].map((f) => f.slice(dir.root.length))).toEqual(['/servers.d/a.yaml', '/servers.d/b.yaml']);
  });

  it('ignores hidden files, other extensions and a missing directory', () => {
    dir.write('servers.d/.a.yaml.swp', 'garbage: [');
    dir.write('servers.d/README.md', '# notes');
    dir.write('servers.d/x.yml', 'command: node');
    expect([...loadServersDir(dir.path('servers.d'), {}).servers.keys()]).toEqual(['x']);
    expect(loadServersDir(dir.path('nope'), {})).toMatchObject({ problems: [] });
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAgentFile, loadAgentsDir } from '../../src/config/agents.js';
import { HASH_A, HASH_B, tempDir, type TempDir } from './helpers.js';

let dir: TempDir;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

const problemsOf = (file: string) => loadAgentFile(file).problems.map((p) => [p.line, p.message]);

describe('agents.d: renamed ids', () => {
  it('an id folded from the file name is a warning naming the rename', () => {
    const file = dir.write('agents.d/Data_Pipeline.yaml', 'tools: { allow: ["*"] }\n');
    expect(loadAgentFile(file)).toMatchObject({
      agents: [{ id: 'data-pipeline' }],
      problems: [],
      warnings: [{ file, line: 1, message: "'Data_Pipeline' (the file name) is used as agent id 'data-pipeline'; add 'id: data-pipeline' to make the rename explicit" }],
    });
    expect(loadAgentFile(dir.write('agents.d/ops.yaml', 'tools: { allow: ["*"] }\n')).warnings).toBeUndefined();
  });
});

describe('agents.d', () => {
  it('loads the SPEC example with every section', () => {
    const file = dir.write(
      'agents.d/data-pipeline.yaml',
      `id: data-pipeline
owner: alice@example.com
team: data
credentials:
  jwt: { sub: "svc-data-pipeline" }
  apiKeys: ["${HASH_A}"]
tools:
  allow: ["bigquery__*", "jira__search"]
  deny: ["*__drop_*"]
  rules:
    - tool: "bigquery__delete_rows"
      args: { table: "tmp_*" }
    - tool: "*__delete_*"
      approval: human
prompts: { allow: ["*"] }
a2a: { allow: ["summarizer"] }
models: { allow: ["gpt-4o-mini"] }
delegation: { agents: ["segment-worker"], maxDepth: 2, maxChildren: 8 }
limits:
  workflow: { steps: 500, toolCalls: 300, tokens: 2000000, seconds: 3600 }
  perMinute: { toolCalls: 120 }
  perDay: { tokens: 5000000, calls: 10 }
  loop: { sameCall: 5, windowSeconds: 60, cycle: 3 }
canSetWorkflow: true
`,
    );
    const { agents, problems } = loadAgentFile(file);
    expect(problems).toEqual([]);
    expect(agents[0]).toEqual({
      id: 'data-pipeline',
      owner: 'alice@example.com',
      team: 'data',
      credentials: { jwt: { sub: 'svc-data-pipeline' }, apiKeys: [HASH_A] },
      tools: {
        allow: ['bigquery__*', 'jira__search'],
        deny: ['*__drop_*'],
        rules: [{ tool: 'bigquery__delete_rows', args: { table: 'tmp_*' } }, { tool: '*__delete_*', approval: 'human' }],
      },
      prompts: { allow: ['*'], deny: [] },
      a2a: { allow: ['summarizer'] },
      models: { allow: ['gpt-4o-mini'], deny: [] },
      delegation: { agents: ['segment-worker'], maxDepth: 2, maxChildren: 8 },
      limits: {
        workflow: { steps: 500, toolCalls: 300, tokens: 2000000, seconds: 3600 },
        perMinute: { toolCalls: 120 },
        perDay: { tokens: 5000000, calls: 10 },
        loop: { sameCall: 5, windowSeconds: 60, cycle: 3 },
      },
      canSetWorkflow: true,
      source: { file, line: 1 },
    });
  });

  it('fills defaults: id from the file name, empty lists, maxDepth by delegation targets', () => {
    const bare = dir.write('agents.d/local.yaml', '# narrow the loopback agent\ntools: { allow: ["everything__*"] }\n');
    expect(loadAgentFile(bare).agents[0]).toEqual({
      id: 'local',
      credentials: { apiKeys: [] },
      tools: { allow: ['everything__*'], deny: [], rules: [] },
      a2a: { allow: [] },
      models: { allow: [], deny: [] },
      delegation: { agents: [], maxDepth: 0, maxChildren: 8 },
      limits: {},
      canSetWorkflow: false,
      source: { file: bare, line: 2 },
    });
    const delegating = dir.write('agents.d/boss.yaml', 'delegation: { agents: [worker] }\n');
    expect(loadAgentFile(delegating).agents[0].delegation).toEqual({ agents: ['worker'], maxDepth: 1, maxChildren: 8 });
  });

  it('reports a plain API key, an unknown field, a bad approval and a jwt without claims on their lines', () => {
    const file = dir.write(
      'agents.d/a.yaml',
      ['id: a', 'credentials:', '  jwt: { iss: "https://idp" }', '  apiKeys:', '    - "my-plain-key"', 'tools:', '  allow: ["*"]', '  rules:', '    - tool: x', '      approval: robot', 'limts: {}'].join('\n'),
    );
    expect(problemsOf(file)).toEqual([
      [3, 'credentials.jwt: name at least one of sub, client_id or azp to match verified tokens on'],
      [5, expect.stringMatching(/^credentials\.apiKeys\[0\]: API key must be 'sha256:' followed by 64/)],
      [10, "tools.rules[0].approval: 'robot' is not one of 'human', 'console'"],
      [11, "unknown field 'limts'; remove it or check its spelling"],
    ]);
  });

  it('reports negative and fractional limits', () => {
    const file = dir.write('agents.d/a.yaml', 'limits:\n  perMinute:\n    toolCalls: -1\n  loop:\n    sameCall: 1.5\n');
    expect(problemsOf(file).map((p) => p[0])).toEqual([3, 5]);
  });

  it('a bad id', () => {
    const file = dir.write('agents.d/a.yaml', '\nid: "Not Valid"\n');
    expect(problemsOf(file)).toEqual([[2, expect.stringMatching(/^id: id must use lowercase letters/)]]);
  });

  it('duplicate ids, shared API keys and identical JWT matches are problems on the later file', () => {
    dir.write('agents.d/a.yaml', `id: one\ncredentials: { apiKeys: ["${HASH_A}"], jwt: { sub: s1 } }\n`);
    const b = dir.write('agents.d/b.yaml', 'id: one\n');
    const c = dir.write('agents.d/c.yaml', `credentials: { apiKeys: ["${HASH_B}", "${HASH_A}"] }\n`);
    const d = dir.write('agents.d/d.yaml', 'credentials: { jwt: { sub: s1 } }\n');
    const { agents, problems } = loadAgentsDir(dir.path('agents.d'));
    expect([...agents.keys()]).toEqual(['one']);
    expect(problems.map((p) => [p.file, p.line])).toEqual([
      [b, 1],
      [c, 1],
      [d, 1],
    ]);
    expect(problems[0].message).toMatch(/agent id 'one' is already used/);
    expect(problems[1].message).toMatch(/already given to agent 'one'/);
    expect(problems[2].message).toMatch(/same tokens as agent 'one'/);
  });

  it('ignores README.md in agents.d', () => {
    dir.write('agents.d/README.md', '# agents');
    expect(loadAgentsDir(dir.path('agents.d'))).toMatchObject({ problems: [] });
    expect(loadAgentsDir(dir.path('agents.d')).agents.size).toBe(0);
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/config/gateway.js';
import { HASH_A, tempDir, type TempDir } from './helpers.js';

let dir: TempDir;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

describe('gateway.yaml', () => {
  it('a missing file means all defaults, paths from the working directory', () => {
    const r = loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} });
    expect(r.problems).toEqual([]);
    expect(r.file).toBeUndefined();
    expect(r.config).toEqual({
      host: '127.0.0.1',
      port: 8080,
      dataDir: dir.path('data'),
      serversDir: dir.path('servers.d'),
      agentsDir: dir.path('agents.d'),
      maxBodyBytes: 4 * 1024 * 1024,
      allowedHosts: [],
      allowedOrigins: [],
      auth: { issuers: [] },
      admin: { tokens: [] },
      teams: {},
      audit: { enabled: true, durability: 'batched', flushMs: 100, modelBodies: 'none', redact: ['password', 'passwd', 'passphrase', 'token', 'secret', 'authorization', 'api_key', 'private_key', 'credential', 'credentials', 'cookie'] },
      delegation: { maxTokenSeconds: 3600 },
      models: [],
      modelRoute: { reservationCapTokens: 8192, maxDrainBytes: 16 * 1024 * 1024 },
      listTimeoutMs: 5000,
      sessions: { idleSeconds: 900, max: 1000 },
      state: { failMode: 'closed' },
      store: {},
      approval: { timeoutSeconds: 300 },
    });
  });

  it('with no path and no gateway.yaml in the working directory reads the fallback file, paths from its folder', () => {
    const fallback = dir.write('pkg/gateway.yaml', 'dataDir: ./data\nserversDir: ./servers.d\n');
    const r = loadGatewayConfig(undefined, {}, { cwd: dir.path('elsewhere'), env: {}, fallbackFile: fallback });
    expect(r.problems).toEqual([]);
    expect(r.file).toBe(fallback);
    expect(r.config).toMatchObject({ dataDir: dir.path('pkg/data'), serversDir: dir.path('pkg/servers.d'), agentsDir: dir.path('pkg/agents.d') });
    dir.write('elsewhere/gateway.yaml', 'port: 9000\n');
    expect(loadGatewayConfig(undefined, {}, { cwd: dir.path('elsewhere'), env: {}, fallbackFile: fallback }).file).toBe(dir.path('elsewhere/gateway.yaml'));
  });

  it('resolves paths against the file, interpolates, and lets overrides win', () => {
    dir.write('conf/keys/jwks.json', '{"keys": []}');
    dir.write('conf/model-key', 'sk-test\n');
    const file = dir.write(
      'conf/gateway.yaml',
      `host: 0.0.0.0
port: \${PORT}
dataDir: ../state
serversDir: servers.d
publicUrl: https://gw.example.com/
auth:
  issuers:
    - issuer: https://idp.example.com
      audience: [switchyard]
      jwksFile: keys/jwks.json
    - issuer: https://other.example.com
      audience: gw
      jwksUri: https://other.example.com/jwks
      algorithms: [ES256]
admin: { tokens: ["${HASH_A}"] }
teams: { data: { perDay: { tokens: 1000 } } }
audit: { durability: strict, retentionDays: 30, redact: [password] }
models:
  - { name: gpt-4o-mini, baseUrl: "https://api.openai.com/v1", apiKey: "\${file:model-key}" }
`,
    );
    const r = loadGatewayConfig('conf/gateway.yaml', { agentsDir: 'my-agents', port: 9999 }, { cwd: dir.root, env: { PORT: '7000' } });
    expect(r.problems).toEqual([]);
    expect(r.file).toBe(file);
    expect(r.config).toMatchObject({
      host: '0.0.0.0',
      port: 9999,
      dataDir: dir.path('state'),
      serversDir: dir.path('conf/servers.d'),
      agentsDir: dir.path('my-agents'),
      publicUrl: 'https://gw.example.com',
      admin: { tokens: [HASH_A] },
      teams: { data: { perDay: { tokens: 1000 } } },
      audit: { enabled: true, durability: 'strict', flushMs: 100, retentionDays: 30, redact: ['password'] },
      models: [{ name: 'gpt-4o-mini', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-test' }],
    });
    expect(r.config.auth.issuers[0]).toEqual({ issuer: 'https://idp.example.com', audience: ['switchyard'], jwksFile: dir.path('conf/keys/jwks.json') });
    expect(r.config.auth.issuers[1].algorithms).toEqual(['ES256']);
  });

  it('numbers and booleans may come from ${VAR}; other text is still a problem', () => {
    dir.write('gateway.yaml', 'port: "${PORT}"\naudit:\n  enabled: ${AUDIT}\n');
    const r = loadGatewayConfig(undefined, {}, { cwd: dir.root, env: { PORT: '7000', AUDIT: 'false' } });
    expect(r.problems).toEqual([]);
    expect(r.config.port).toBe(7000);
    expect(r.config.audit.enabled).toBe(false);
    const bad = loadGatewayConfig(undefined, {}, { cwd: dir.root, env: { PORT: 'eighty', AUDIT: 'no' } });
    expect(bad.problems.map((p) => [p.line, p.message])).toEqual([
      [1, "port: expected number, got string; change the value's type"],
      [3, "audit.enabled: expected boolean, got string; change the value's type"],
    ]);
  });

  it('reports problems with lines and returns defaults', () => {
    dir.write(
      'gateway.yaml',
      ['port: 70000', 'auth:', '  issuers:', '    - issuer: https://idp', '      audience: x', 'admin:', '  tokens: ["plain"]', 'audit: { durability: sometimes }', 'colour: blue'].join('\n'),
    );
    const r = loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} });
    expect(r.problems.map((p) => [p.line, p.message])).toEqual([
      [1, 'port: must be 0–65535'],
      [4, expect.stringMatching(/exactly one of 'jwksUri' .* or 'jwksFile'/)],
      [7, expect.stringMatching(/admin token must be 'sha256:'/)],
      [8, "audit.durability: 'sometimes' is not one of 'batched', 'strict'"],
      [9, "unknown field 'colour'; remove it or check its spelling"],
    ]);
    expect(r.config.port).toBe(8080);
  });

  it('broken syntax and missing variables are problems', () => {
    dir.write('gateway.yaml', 'host: "${LISTEN_HOST}"\nport: [\n');
    expect(loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} }).problems[0]).toMatchObject({ line: 3, message: expect.stringMatching(/^YAML syntax/) });
    dir.write('gateway.yaml', 'port: 1\nhost: "${LISTEN_HOST}"\n');
    expect(loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} }).problems).toEqual([
      { file: dir.path('gateway.yaml'), line: 2, message: expect.stringMatching(/LISTEN_HOST is not set/) },
    ]);
  });

  it('duplicate model names', () => {
    dir.write('gateway.yaml', 'models:\n  - { name: m, baseUrl: "http://a" }\n  - name: m\n    baseUrl: "http://b"\n');
    expect(loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} }).problems.map((p) => p.line)).toEqual([3]);
  });

  it('state.redis and store.postgres take URLs of their own kind, with a clear problem otherwise', () => {
    dir.write('gateway.yaml', 'state:\n  redis: redis://10.0.0.5:6379/2\n  failMode: open\nstore:\n  postgres: postgres://sy@db:5432/switchyard\n');
    const ok = loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} });
    expect(ok.problems).toEqual([]);
    expect(ok.config.state).toEqual({ redis: 'redis://10.0.0.5:6379/2', failMode: 'open' });
    expect(ok.config.store).toEqual({ postgres: 'postgres://sy@db:5432/switchyard' });
    dir.write('gateway.yaml', 'state:\n  redis: http://cache:6379\n  failMode: maybe\nstore:\n  postgres: mysql://db/x\n');
    expect(loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} }).problems.map((p) => [p.line, p.message])).toEqual([
      [2, expect.stringMatching(/must be a Redis URL such as redis:\/\//)],
      [3, "state.failMode: 'maybe' is not one of 'closed', 'open'"],
      [5, expect.stringMatching(/must be a PostgreSQL URL/)],
    ]);
  });

  it('state.advertiseUrl is an http(s) URL, kept without a trailing slash', () => {
    dir.write('gateway.yaml', 'state:\n  redis: redis://cache:6379/0\n  advertiseUrl: http://10.0.0.7:8080/\n');
    const ok = loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} });
    expect(ok.problems).toEqual([]);
    expect(ok.config.state).toEqual({ redis: 'redis://cache:6379/0', failMode: 'closed', advertiseUrl: 'http://10.0.0.7:8080' });
    dir.write('gateway.yaml', 'state:\n  advertiseUrl: 10.0.0.7:8080\n');
    expect(loadGatewayConfig(undefined, {}, { cwd: dir.root, env: {} }).problems.map((p) => [p.line, p.message])).toEqual([[2, expect.stringMatching(/^state\.advertiseUrl: must be an http\(s\) URL where the other replicas reach this one/)]]);
  });
});

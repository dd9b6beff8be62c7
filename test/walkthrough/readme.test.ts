// The README's quick start and client sections, run as written in a fresh clone of the repository's HEAD.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { REPO_ROOT, connectClient, runCommand, scratch, startCommand, stopAll, toolNames } from '../helpers/gateway.js';

const clients: Client[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await stopAll();
});

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The environment of a user's shell: without what `npm test` sets for its own run (its prefix, its config flags). */
const SHELL_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD'));
const SHIPPED_TOOLS = ['everything__echo', 'memory__read_graph'];

/** The fenced blocks of a README section (from its `## title` to the next `## `). */
function blocksOf(readme: string, title: string): string[] {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start === -1) throw new Error(`README has no section '## ${title}'`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/^ {2}/gm, '').trim());
}

/** The one client config of a section that holds `key` ("url" or "command"), parsed. */
function clientSnippet(readme: string, key: 'url' | 'command'): { command?: string; args?: string[]; url?: string } {
  const found = blocksOf(readme, 'Point a client at it')
    .filter((b) => b.startsWith('{'))
    .map((b) => JSON.parse(b) as { mcpServers?: Record<string, { command?: string; args?: string[]; url?: string }> })
    .flatMap((c) => Object.values(c.mcpServers ?? {}))
    .find((entry) => entry[key] !== undefined);
  if (!found) throw new Error(`README's client section has no mcpServers entry with '${key}'`);
  return found;
}

/**
 * A native module build of the checkout under test, offered to the clone's install as a local prebuild so the
 * install does not compile SQLite again (it still compiles when this checkout has no build for this Node).
 */
function localPrebuilds(dir: string): Promise<Record<string, string>> {
  const pkgDir = join(REPO_ROOT, 'node_modules', 'better-sqlite3');
  const binary = join(pkgDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(binary)) return Promise.resolve({});
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  mkdirSync(dir, { recursive: true });
  const tarball = join(dir, `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`);
  return runCommand('tar', ['-czf', tarball, '-C', pkgDir, 'build/Release/better_sqlite3.node']).then(
    (r): Record<string, string> => (r.code === 0 ? { npm_config_better_sqlite3_local_prebuilds: dir } : {}),
  );
}

describe('README walk-through in a fresh clone', () => {
  it(
    'npm install, npm start, then the Cursor URL config and the Claude Desktop stdio snippet list the shipped tools',
    async () => {
      const home = scratch('switchyard-clone-');
      const clone = join(home, 'switchyard');
      const clone$ = await runCommand('git', ['clone', '--quiet', REPO_ROOT, clone], { cwd: home, baseEnv: SHELL_ENV });
      expect(clone$.code, clone$.stderr).toBe(0);
      const readme = readFileSync(join(clone, 'README.md'), 'utf8');
      const quickStart = blocksOf(readme, 'Quick start')[0]!.split('\n');
      expect(quickStart).toEqual(['npm install', 'npm start']);

      // `npm install` in a clean clone; `ci` is the same install from the lockfile, preferring the npm cache.
      const install = await runCommand(NPM, ['ci', '--prefer-offline', '--no-audit', '--no-fund'], {
        cwd: clone,
        baseEnv: SHELL_ENV,
        env: await localPrebuilds(join(home, 'prebuilds')),
      });
      expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
      expect(existsSync(join(clone, 'dist', 'cli.js')), 'npm install builds dist/ through prepare').toBe(true);

      // `npm start`, on a free port: `-- --port 0` reaches `serve`, and the listening line names the bound URL.
      const gw = await startCommand(NPM, ['start', '--', '--port', '0'], (l) => l.includes('"msg":"listening"'), { cwd: clone, baseEnv: SHELL_ENV, timeoutMs: 60_000 });
      const url = (JSON.parse(gw.line) as { url: string }).url;
      const port = new URL(url).port;

      const cursor = clientSnippet(readme, 'url');
      expect(cursor.url).toBe('http://127.0.0.1:8080/mcp');
      const http = await connectClient(cursor.url!.replace(':8080', `:${port}`), { name: 'cursor-style' });
      expect(await toolNames(http)).toEqual(expect.arrayContaining(SHIPPED_TOOLS));

      const desktop = clientSnippet(readme, 'command');
      expect(desktop.command).toBe('node');
      const args = desktop.args!.map((a) => a.replace('/path/to/switchyard', clone));
      const transport = new StdioClientTransport({ command: desktop.command!, args, cwd: scratch('switchyard-desktop-'), env: SHELL_ENV as Record<string, string>, stderr: 'pipe' });
      const stdio = new Client({ name: 'claude-desktop-style', version: '1.0.0' });
      clients.push(stdio);
      await stdio.connect(transport);
      expect(await toolNames(stdio)).toEqual(expect.arrayContaining(SHIPPED_TOOLS));

      await stdio.close();
      await gw.stop();
    },
    240_000,
  );
});

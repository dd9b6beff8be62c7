// The command line as a newcomer meets it: usage errors, a busy port, validate with nothing to check, problems said once.
import { createServer, type Server } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, requireBuild, runCommand, scratch, startGateway, stopAll, waitFor } from '../helpers/gateway.js';

afterAll(stopAll);
requireBuild();

const runCli = (args: string[], opts: { cwd?: string } = {}) => runCommand(process.execPath, [CLI, ...args], opts);

/** A gateway folder with one working-nothing configuration, and the flags that point serve at it. */
function project(): { dir: string; flags: string[] } {
  const dir = scratch('switchyard-cli-');
  for (const d of ['servers.d', 'agents.d', 'data']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'gateway.yaml'), '{}\n');
  return { dir, flags: ['--config', join(dir, 'gateway.yaml'), '--servers', join(dir, 'servers.d'), '--agents', join(dir, 'agents.d'), '--data', join(dir, 'data')] };
}

describe('usage errors', () => {
  it('an unknown flag names the flag and the usage, without a stack trace, and exits 2', async () => {
    const r = await runCli(['serve', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^switchyard serve: unknown option '--bogus'; usage: switchyard serve \[--config/)]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a flag without its value, a stray argument, a bad port and an unknown command exit 2 with one line', async () => {
    for (const args of [['serve', '--port'], ['serve', 'extra'], ['serve', '--port', 'eighty'], ['stdio', '--nope'], ['bogus']]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('a busy port', () => {
  let blocker: Server | undefined;
  afterAll(() => blocker?.close());

  it('says which port is in use and what to do, and exits 1', async () => {
    blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker!.listen(0, '127.0.0.1', () => resolve((blocker!.address() as { port: number }).port)));
    const { flags } = project();
    const r = await runCli(['serve', ...flags, '--port', String(port)]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`port ${port} is in use: pass --port N or stop the other process`);
  });
});

describe('switchyard validate', () => {
  it('says that nothing was found and exits 1 in a folder with no manifests', async () => {
    const empty = scratch('switchyard-empty-');
    const r = await runCli(['validate'], { cwd: empty });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/^ok/m);
    expect(r.stderr).toMatch(/^nothing to validate: no manifests found in .*; pass a file or directory, e\.g\. switchyard validate servers\.d\n$/);
    const emptyDir = join(empty, 'servers.d');
    mkdirSync(emptyDir);
    expect((await runCli(['validate', emptyDir], { cwd: empty })).code).toBe(1);
  });

  it('reports one message per problem, and every problem of every file in one run', async () => {
    const { dir } = project();
    writeFileSync(join(dir, 'servers.d', 'indent.yaml'), 'command: node\nargs:\n  - a\n - b\n');
    writeFileSync(join(dir, 'servers.d', 'both.yaml'), 'command: node\nurl: http://127.0.0.1:1/mcp\nbogus: 1\n');
    const r = await runCli(['validate', join(dir, 'servers.d')], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      "servers.d/both.yaml:2: both 'command' and 'url' given; keep 'command' for a local stdio server or 'url' for a remote one",
      "servers.d/both.yaml:3: unknown field 'bogus'; remove it or check its spelling",
      expect.stringMatching(/^servers\.d\/indent\.yaml:4: YAML syntax: /),
    ]);
  });
});

describe('switchyard validate: renamed names', () => {
  it('a renamed default name is a warning line that does not fail validation', async () => {
    const { dir } = project();
    writeFileSync(join(dir, 'servers.d', 'Weather_API.yaml'), 'command: node\n');
    const r = await runCli(['validate', join(dir, 'servers.d')], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        "servers.d/Weather_API.yaml:1: warning: 'Weather_API' (the file name) is used as server name 'weather-api'; add 'name: weather-api' to make the rename explicit",
        'ok: 1 file(s) valid, 1 warning(s) above',
      ]),
    );
  });
});

describe('data directory of the maintenance commands', () => {
  it("audit verify and keys rotate default to the gateway.yaml's dataDir, as serve does", async () => {
    const dir = scratch('switchyard-datadir-');
    writeFileSync(join(dir, 'gateway.yaml'), 'dataDir: ./state\n');
    const rotate = await runCli(['keys', 'rotate'], { cwd: dir });
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toContain(`in ${join(dir, 'state', 'keys')}`);
    const verify = await runCli(['audit', 'verify'], { cwd: dir });
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain(join(dir, 'state', 'switchyard.db'));
  });
});

describe('serve with a broken manifest', () => {
  it('logs each problem once', async () => {
    const gw = await startGateway({ servers: { 'broken.yaml': 'command: node\nargs:\n  - a\n - b\n' } });
    const about = () => gw.logRecords().filter((r) => String(r.msg).includes('broken.yaml:4'));
    await waitFor(() => about().length > 0, { what: 'the problem in the log' });
    await waitFor(() => gw.logRecords().some((r) => r.msg === 'listening'), { what: 'listening' });
    expect(about()).toHaveLength(1);
    await gw.stop();
  });
});

// Real processes for the conformance suites: a fixture server or the gateway,
// started on port 0 and recognised as ready from a stdout line.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GATEWAY_BIN = join(ROOT, 'bin', 'switchyard.js');
export const START_TIMEOUT_MS = 30_000;

export interface Started {
  child: ChildProcess;
  /** What the readiness matcher extracted from the process's stdout. */
  value: string;
  output: () => string;
}

/** Spawns `command args` and resolves once `ready` recognises a stdout line; rejects with its output otherwise. */
export function startProcess(
  args: string[],
  ready: (line: string) => string | undefined,
  what: string,
  command: string = process.execPath,
): Promise<Started> {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exitNote = '';
  const tail = () => exitNote + output.split('\n').slice(-40).join('\n');
  return new Promise((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started process behind
      reject(new Error(`${what} did not report ready within ${START_TIMEOUT_MS} ms. Output:\n${tail()}`));
    }, START_TIMEOUT_MS);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const value = ready(line);
        if (value !== undefined) {
          clearTimeout(timer);
          resolve({ child, value, output: tail });
          return;
        }
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`Could not start ${what}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      exitNote = `[${what} exited: ${signal ?? `code ${code}`}]\n`;
      clearTimeout(timer);
      reject(new Error(`${what} exited (${signal ?? code}) before it was ready. Output:\n${tail()}`));
    });
  });
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A fixture that prints `listening http://…` once it serves. */
export function startFixture(args: string[], what: string, command?: string): Promise<Started> {
  return startProcess(args, (line) => /^listening (http:\/\/\S+)$/.exec(line.trim())?.[1], what, command);
}

/**
 * Starts `switchyard serve` with one required upstream `name` at `upstreamUrl` and waits
 * for /readyz (`extraManifest`: more YAML lines for its manifest). No issuers and no API keys: loopback callers act as the built-in `local`
 * agent, allowed everything. Relies on the CLI logging {"msg":"listening","url":…}.
 */
export async function startGatewayFor(dir: string, name: string, upstreamUrl: string, extraManifest = ''): Promise<Started> {
  if (!existsSync(GATEWAY_BIN)) throw new Error(`${GATEWAY_BIN} is missing: build the gateway CLI first.`);
  const serversDir = join(dir, 'servers.d');
  const agentsDir = join(dir, 'agents.d');
  const dataDir = join(dir, 'data');
  await Promise.all([serversDir, agentsDir, dataDir].map((d) => mkdir(d, { recursive: true })));
  await writeFile(join(dir, 'gateway.yaml'), 'auth:\n  issuers: []\n');
  // required: /readyz then tells us when the upstream is reachable.
  await writeFile(join(serversDir, `${name}.yaml`), `name: ${name}\ntransport: http\nurl: ${upstreamUrl}\nrequired: true\n${extraManifest}`);

  const gateway = await startProcess(
    [
      GATEWAY_BIN, 'serve', '--port', '0',
      '--config', join(dir, 'gateway.yaml'),
      '--servers', serversDir,
      '--agents', agentsDir,
      '--data', dataDir,
    ],
    (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
        return entry.msg === 'listening' && typeof entry.url === 'string' ? entry.url : undefined;
      } catch {
        return undefined; // not a JSON log line
      }
    },
    'The gateway (`switchyard serve`)',
  );

  const readyz = new URL('/readyz', gateway.value).href;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(readyz);
      if (res.ok) return gateway;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stopProcess(gateway.child);
  throw new Error(`${readyz} never answered 200 (last: ${last}). Gateway output:\n${gateway.output()}`);
}

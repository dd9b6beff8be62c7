// The official MCP conformance suite (server scenarios), run twice: against the
// conformance fixture directly, then through the gateway at
// /servers/conformance/mcp. A relay that loses anything (notifications,
// server-to-client requests, schema fields, SSE behaviour, Host checks) passes
// fewer checks through the gateway than directly.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailures, runConformance, type ConformanceResult } from './conformance/run.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-server.mjs');
const GATEWAY_BIN = join(ROOT, 'bin', 'switchyard.js');

const START_TIMEOUT_MS = 30_000;
const SUITE_TIMEOUT_MS = 5 * 60_000;

interface Started {
  child: ChildProcess;
  /** What the readiness matcher extracted from the process's stdout. */
  value: string;
  output: () => string;
}

/** Spawns a process and resolves once `ready` recognises a stdout line; rejects with its output otherwise. */
function startProcess(
  args: string[],
  ready: (line: string) => string | undefined,
  what: string,
): Promise<Started> {
  const child = spawn(process.execPath, args, {
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

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Calls test_reconnection, whose server drops the POST SSE stream mid-call (after a
 * priming event with `retry`); the result only arrives if the client resumes with
 * GET + Last-Event-ID. The suite itself cannot catch a relay that loses it.
 */
async function callThroughDroppedStream(url: string): Promise<string> {
  const client = new Client({ name: 'switchyard-conformance-test', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    const result = await client
      .callTool({ name: 'test_reconnection', arguments: {} }, undefined, { timeout: 15_000 })
      .catch((err: Error) => {
        throw new Error(
          `test_reconnection at ${url} gave no result (${err.message}). The server closed the call's SSE stream ` +
            'after a priming event; the result is only delivered on a GET with Last-Event-ID after `retry` ms.',
        );
      });
    expect(result.isError, JSON.stringify(result)).toBeFalsy();
    const [first] = result.content as Array<{ type: string; text?: string }>;
    return first?.text ?? JSON.stringify(result);
  } finally {
    await client.close();
  }
}

/** Passed checks per scenario: the shape compared between the direct and relayed runs. */
function passedByScenario(result: ConformanceResult): Record<string, number> {
  return Object.fromEntries(result.scenarios.map((s) => [s.scenario, s.passed]));
}

describe('MCP conformance (official server suite)', () => {
  let workDir: string;
  let fixture: Started | undefined;
  let fixtureUrl: string;
  let directRun: Promise<ConformanceResult> | undefined;

  // Shared by both tests, so the relayed run can be compared even when run alone.
  const runDirect = () => (directRun ??= runConformance(fixtureUrl, { outDir: join(workDir, 'direct') }));

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'switchyard-conformance-test-'));
    fixture = await startProcess(
      [FIXTURE, '--port', '0'],
      (line) => /^listening (http:\/\/\S+)$/.exec(line.trim())?.[1],
      'The conformance fixture server',
    );
    fixtureUrl = fixture.value;
  }, START_TIMEOUT_MS + 5_000);

  afterAll(async () => {
    await stopProcess(fixture?.child);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it(
    'the fixture passes every server scenario directly',
    async () => {
      const result = await runDirect();
      expect(result.failed, `failed checks:\n${describeFailures(result)}`).toBe(0);
      expect(result.passed).toBeGreaterThan(0);
      expect(result.scenarios.length, 'one checks.json per scenario').toBeGreaterThan(0);
      expect(result.scenarios.filter((s) => s.failed > 0)).toEqual([]);
    },
    SUITE_TIMEOUT_MS,
  );

  it('the fixture finishes a call whose SSE stream it dropped, once the client resumes (SEP-1699)', async () => {
    expect(await callThroughDroppedStream(fixtureUrl)).toContain('Reconnection test completed');
  }, 30_000);

  // Relies on the gateway CLI contract: `node bin/switchyard.js serve --port 0 --config F
  // --servers D --agents D --data D` logs a pino JSON line {"msg":"listening","url":"http://127.0.0.1:PORT"},
  // serves /servers/{name}/mcp, and /readyz answers 200 once required upstreams are up.
  describe('through the gateway at /servers/conformance/mcp', () => {
    let gateway: Started | undefined;
    let gatewayEndpoint: string;

    beforeAll(async () => {
      if (!existsSync(GATEWAY_BIN)) throw new Error(`${GATEWAY_BIN} is missing: build the gateway CLI first.`);
      const dir = join(workDir, 'gateway');
      const serversDir = join(dir, 'servers.d');
      const agentsDir = join(dir, 'agents.d');
      const dataDir = join(dir, 'data');
      await Promise.all([serversDir, agentsDir, dataDir].map((d) => mkdir(d, { recursive: true })));
      // No issuers and no API keys: loopback callers act as the built-in `local` agent, allowed everything.
      await writeFile(join(dir, 'gateway.yaml'), 'auth:\n  issuers: []\n');
      await writeFile(
        join(serversDir, 'conformance.yaml'),
        // required: /readyz then tells us when the upstream is reachable.
        `name: conformance\ntransport: http\nurl: ${fixtureUrl}\nrequired: true\n`,
      );

      gateway = await startProcess(
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
      gatewayEndpoint = new URL('/servers/conformance/mcp', gateway.value).href;

      const readyz = new URL('/readyz', gateway.value).href;
      const deadline = Date.now() + START_TIMEOUT_MS;
      let last = 'no answer';
      while (Date.now() < deadline) {
        try {
          const res = await fetch(readyz);
          if (res.ok) return;
          last = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
        } catch (err) {
          last = (err as Error).message;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`${readyz} never answered 200 (last: ${last}). Gateway output:\n${gateway.output()}`);
    }, 2 * START_TIMEOUT_MS + 5_000);

    afterAll(async () => {
      await stopProcess(gateway?.child);
    });

    it(
      'passes exactly the checks the fixture passes directly, and fails none',
      async () => {
        const relayed = await runConformance(gatewayEndpoint, { outDir: join(workDir, 'via-gateway') });
        const direct = await runDirect();
        expect(direct.failed, 'the direct run must be clean first').toBe(0);
        expect(
          relayed.failed,
          `failed checks through the gateway:\n${describeFailures(relayed)}\nGateway output:\n${gateway?.output()}`,
        ).toBe(0);
        expect(passedByScenario(relayed), 'passed checks per scenario, relayed vs direct').toEqual(
          passedByScenario(direct),
        );
        expect(relayed.passed).toBe(direct.passed);
      },
      SUITE_TIMEOUT_MS,
    );

    it('finishes a call whose upstream dropped the SSE stream mid-call (resumes upstream with Last-Event-ID)', async () => {
      expect(await callThroughDroppedStream(gatewayEndpoint)).toContain('Reconnection test completed');
    }, 30_000);
  });
});

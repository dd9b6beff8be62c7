// The official MCP conformance suite (server scenarios), run twice: against the
// conformance fixture directly, then through the gateway at
// /servers/conformance/mcp. A relay that loses anything (notifications,
// server-to-client requests, schema fields, SSE behaviour, Host checks) passes
// fewer checks through the gateway than directly.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailures, runConformance, type ConformanceResult } from './conformance/run.mjs';
import { ROOT, START_TIMEOUT_MS, startFixture, startGatewayFor, stopProcess, type Started } from './helpers/started-process.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-server.mjs');
const SUITE_TIMEOUT_MS = 5 * 60_000;

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
    fixture = await startFixture([FIXTURE, '--port', '0'], 'The conformance fixture server');
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

  describe('through the gateway at /servers/conformance/mcp', () => {
    let gateway: Started | undefined;
    let gatewayEndpoint: string;

    beforeAll(async () => {
      gateway = await startGatewayFor(join(workDir, 'gateway'), 'conformance', fixtureUrl);
      gatewayEndpoint = new URL('/servers/conformance/mcp', gateway.value).href;
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
        console.log(`2025-11-25 suite: ${direct.passed}/${direct.passed + direct.failed} direct, ${relayed.passed}/${relayed.passed + relayed.failed} through the gateway (upstream protocol: auto)`);
        expect(relayed.passed).toBe(direct.passed);
      },
      SUITE_TIMEOUT_MS,
    );

    it('finishes a call whose upstream dropped the SSE stream mid-call (resumes upstream with Last-Event-ID)', async () => {
      expect(await callThroughDroppedStream(gatewayEndpoint)).toContain('Reconnection test completed');
    }, 30_000);
  });
});

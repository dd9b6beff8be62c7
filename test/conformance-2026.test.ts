// The official MCP conformance suite for protocol 2026-07-28
// (@modelcontextprotocol/conformance 0.2.0-alpha.12, `--requirements 2026-07-28`),
// against the fixture written with the v2 SDK. Only the scenarios the revision's
// frozen requirements file scores decide; the rest (the tasks extension, pending
// ones) run and are reported.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailures, runConformance, scoredServerScenarios, type ConformanceResult } from './conformance/run.mjs';
import { ROOT, START_TIMEOUT_MS, startFixture, startGatewayFor, stopProcess, type Started } from './helpers/started-process.js';

const HOME = join(ROOT, 'test', 'conformance-2026');
const FIXTURE = join(HOME, 'fixture-server.mjs');
// The v2 SDK's dependencies ask for Node 22, so the fixture runs on the suite's node.
const NODE22 = join(HOME, 'node_modules', '.bin', 'node');
const SUITE_TIMEOUT_MS = 5 * 60_000;

/**
 * Scored checks that fail through the gateway for a reason this file names, per upstream revision. An entry that
 * starts passing fails the test, so the list only shrinks.
 */
const KNOWN_GAPS: Record<'2025-11-25' | '2026-07-28', Record<string, string>> = {
  '2026-07-28': {},
  // Over a 2025-11-25 connection the fixture (the SDK's stateless legacy serving) cannot ask the client anything, so
  // there is no sampling/elicitation/roots request for the gateway to bridge into input_required: its multi-round
  // tools only work when the gateway speaks 2026-07-28 to it. (Bridging itself is tested in test/e2e/mcp-2026.test.ts.)
  '2025-11-25': {
    'server-stateless › sep-2575-server-rejects-undeclared-capability': 'no upstream request to bridge',
    'server-stateless › sep-2575-missing-capability-http-400': 'no upstream request to bridge',
    'input-required-result-basic-elicitation › sep-2322-elicitation-incomplete': 'no upstream request to bridge',
    'input-required-result-basic-list-roots › sep-2322-list-roots-incomplete': 'no upstream request to bridge',
    'input-required-result-basic-sampling › sep-2322-sampling-incomplete': 'no upstream request to bridge',
    'input-required-result-capability-check › sep-2322-respect-client-capabilities': 'no upstream request to bridge',
    'input-required-result-multi-round › sep-2322-multi-round-r1': 'no upstream request to bridge',
    'input-required-result-multiple-input-requests › sep-2322-multiple-inputs-incomplete': 'no upstream request to bridge',
    'input-required-result-non-tool-request › sep-2322-non-tool-incomplete': 'no upstream request to bridge',
    'input-required-result-request-state › sep-2322-request-state-incomplete': 'no upstream request to bridge',
    'input-required-result-result-type › sep-2322-result-type-included': 'no upstream request to bridge',
    'input-required-result-tampered-state › sep-2322-reject-tampered-state': 'no upstream request to bridge',
  },
};

const checkKey = (f: { scenario: string; id: string }) => `${f.scenario} › ${f.id}`;

function scoredSummary(result: ConformanceResult): Record<string, string> {
  return Object.fromEntries(result.scenarios.filter((s) => s.scored).map((s) => [s.scenario, `${s.passed}/${s.failed}`]));
}

describe('MCP 2026-07-28 conformance (official server suite, --requirements 2026-07-28)', () => {
  let workDir: string;
  let fixture: Started | undefined;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'switchyard-conformance-2026-'));
    fixture = await startFixture([FIXTURE, '--port', '0'], 'The 2026-07-28 conformance fixture', NODE22);
  }, START_TIMEOUT_MS + 5_000);

  afterAll(async () => {
    await stopProcess(fixture?.child);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  let directRun: Promise<ConformanceResult> | undefined;
  const runDirect = () => (directRun ??= runConformance(fixture!.value, { requirements: '2026-07-28', outDir: join(workDir, 'direct') }));

  it(
    'the fixture passes every scored scenario directly',
    async () => {
      const scored = await scoredServerScenarios('2026-07-28');
      const result = await runDirect();
      expect(result.scoredFailures, `failed scored checks:\n${describeFailures({ failures: result.scoredFailures })}`).toEqual([]);
      // Every scored scenario ran and passed checks; none was silently skipped.
      const ran = result.scenarios.filter((s) => s.scored);
      expect(ran.map((s) => s.scenario).sort()).toEqual([...scored].sort());
      expect(ran.filter((s) => s.passed === 0), 'scored scenarios with no passed check').toEqual([]);
      expect(result.exitCode, `CLI output:\n${result.stdout.slice(-3000)}`).toBe(0);
      console.log(`2026-07-28 direct: ${result.passed} passed, ${result.failed} failed overall; scored ${JSON.stringify(scoredSummary(result))}`);
    },
    SUITE_TIMEOUT_MS,
  );

  for (const upstreamRevision of ['2026-07-28', '2025-11-25'] as const) {
    describe(`through the gateway at /servers/conformance/mcp, speaking ${upstreamRevision} upstream`, () => {
      let gateway: Started | undefined;

      beforeAll(async () => {
        // The modern run leaves `protocol` at its default (auto), so the probe is what picks 2026-07-28; the fixture
        // also serves 2025-11-25, which only an explicit protocol reaches.
        const protocol = upstreamRevision === '2026-07-28' ? '' : 'protocol: 2025-11-25\n';
        gateway = await startGatewayFor(join(workDir, `gateway-${upstreamRevision}`), 'conformance', fixture!.value, protocol);
      }, 2 * START_TIMEOUT_MS + 5_000);

      afterAll(async () => {
        await stopProcess(gateway?.child);
      });

      it(
        'fails no scored check the fixture passes directly, except the named gaps (which must still fail)',
        async () => {
          const endpoint = new URL('/servers/conformance/mcp', gateway!.value).href;
          const relayed = await runConformance(endpoint, { requirements: '2026-07-28', outDir: join(workDir, `via-${upstreamRevision}`) });
          const direct = await runDirect();
          expect(direct.scoredFailures, 'the direct run must be clean first').toEqual([]);
          const gaps = KNOWN_GAPS[upstreamRevision];
          const unexpected = relayed.scoredFailures.filter((f) => !(checkKey(f) in gaps));
          expect(unexpected, `scored checks failing through the gateway:\n${describeFailures({ failures: unexpected })}\nGateway output:\n${gateway?.output()}`).toEqual([]);
          const closed = Object.keys(gaps).filter((k) => !relayed.scoredFailures.some((f) => checkKey(f) === k));
          expect(closed, 'gaps that now pass: remove them from KNOWN_GAPS').toEqual([]);
          // Every scored scenario ran through the gateway too.
          expect(relayed.scenarios.filter((s) => s.scored).map((s) => s.scenario).sort()).toEqual(
            direct.scenarios.filter((s) => s.scored).map((s) => s.scenario).sort(),
          );
            console.log(`2026-07-28 via gateway (${upstreamRevision} upstream): ${relayed.passed} passed, ${relayed.failed} failed overall; ${relayed.scoredFailures.length} scored failure(s), all named gaps; warnings ${relayed.warnings.map(checkKey).join(', ') || 'none'}`);
          },
          SUITE_TIMEOUT_MS,
        );
    });
  }
});

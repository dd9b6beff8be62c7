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
import { ROOT, START_TIMEOUT_MS, startFixture, stopProcess, type Started } from './helpers/started-process.js';

const HOME = join(ROOT, 'test', 'conformance-2026');
const FIXTURE = join(HOME, 'fixture-server.mjs');
// The v2 SDK's dependencies ask for Node 22, so the fixture runs on the suite's node.
const NODE22 = join(HOME, 'node_modules', '.bin', 'node');
const SUITE_TIMEOUT_MS = 5 * 60_000;

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

  it(
    'the fixture passes every scored scenario directly',
    async () => {
      const scored = await scoredServerScenarios('2026-07-28');
      const result = await runConformance(fixture!.value, { requirements: '2026-07-28', outDir: join(workDir, 'direct') });
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
});

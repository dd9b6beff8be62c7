// Runs the official MCP conformance CLI (server scenarios) against a URL and
// returns a structured summary. The CLI needs Node >= 22, so it is spawned with
// the `node` installed in this folder, never the project's Node 20.
//
//   import { runConformance } from './conformance/run.mjs';
//   const r = await runConformance('http://127.0.0.1:PORT/mcp', { outDir });
//
// Also usable from a shell: node test/conformance/run.mjs URL [--scenario NAME] [--suite all|active]
//                                                           [--requirements 2026-07-28]
//
// With `requirements` (e.g. '2026-07-28') it runs the CLI pinned for that revision
// (test/conformance-2026/, 0.2.0-alpha.12) with `--requirements`, and marks each
// scenario scored or not from the revision's frozen requirements file.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const NODE22_BIN = join(HERE, 'node_modules', '.bin', 'node');
export const CONFORMANCE_CLI = join(HERE, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const REVISION_HOME = join(HERE, '..', 'conformance-2026');
const REVISION_CLI = join(REVISION_HOME, 'node_modules', '@modelcontextprotocol', 'conformance');
/** The CLI that scores a revision's frozen requirement set (`--requirements`). */
export const CONFORMANCE_2026_CLI = join(REVISION_CLI, 'dist', 'index.js');
const INSTALL_HINT =
  'run `node scripts/ensure-conformance.mjs` (or `npm ci --prefix test/conformance` and `npm ci --prefix test/conformance-2026`)';

// `-o DIR` writes DIR/server-<scenario>-<ISO timestamp with : and . as ->/checks.json.
const RESULT_DIR_PATTERN = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
const TOTAL_PATTERN = /^Total: (\d+) passed, (\d+) failed\s*$/m;

/**
 * @typedef {{ scenario: string, id: string, name: string, description?: string, errorMessage?: string }} CheckIssue
 * @typedef {{ scenario: string, passed: number, failed: number, warnings: number }} ScenarioSummary
 * @typedef {{
 *   passed: number, failed: number, total: number, exitCode: number | null,
 *   scenarios: ScenarioSummary[], failures: CheckIssue[], warnings: CheckIssue[],
 *   outDir: string, stdout: string, stderr: string,
 * }} ConformanceResult
 */

let checkedNode = false;

/** Fails early, with the fix, when the Node 22 toolchain is missing or wrong. */
export function assertConformanceInstalled(cli = CONFORMANCE_CLI) {
  if (!existsSync(NODE22_BIN) || !existsSync(cli)) {
    throw new Error(`The conformance CLI is not installed at ${cli}: ${INSTALL_HINT}.`);
  }
  if (checkedNode) return;
  const version = execFileSync(NODE22_BIN, ['--version'], { encoding: 'utf8' }).trim();
  const major = Number(/^v(\d+)/.exec(version)?.[1]);
  if (!(major >= 22)) {
    throw new Error(`${NODE22_BIN} is ${version}; the conformance CLI needs Node >= 22: ${INSTALL_HINT}.`);
  }
  checkedNode = true;
}

/**
 * Runs `conformance server --url URL` and summarises it.
 * `passed`/`failed` are check counts from the CLI's `Total:` line; `total` is their sum.
 * @param {string} url MCP endpoint to test, e.g. http://127.0.0.1:PORT/mcp
 * @param {{ outDir?: string, suite?: 'all' | 'active' | 'pending', scenario?: string, timeoutMs?: number }} [options]
 *   suite defaults to 'all' (active plus pending scenarios such as JSON Schema 2020-12 and SSE polling).
 * @returns {Promise<ConformanceResult>}
 */
export async function runConformance(url, options = {}) {
  const { suite = 'all', scenario, requirements, timeoutMs = 10 * 60_000 } = options;
  const cli = requirements ? CONFORMANCE_2026_CLI : CONFORMANCE_CLI;
  assertConformanceInstalled(cli);
  const scored = requirements ? await scoredServerScenarios(requirements) : undefined;
  const outDir = options.outDir ?? (await mkdtemp(join(tmpdir(), 'switchyard-conformance-')));
  await mkdir(outDir, { recursive: true });
  // Only this run's result folders are read, so a reused outDir never mixes runs.
  const before = new Set(await readdir(outDir));

  const args = [cli, 'server', '--url', url, '-o', outDir];
  if (scenario) args.push('--scenario', scenario);
  else if (requirements) args.push('--requirements', requirements);
  else args.push('--suite', suite);

  const { exitCode, stdout, stderr } = await spawnCollect(NODE22_BIN, args, timeoutMs);

  const scenarios = [];
  const failures = [];
  const warnings = [];
  for (const entry of (await readdir(outDir)).filter((e) => !before.has(e)).sort()) {
    const name = RESULT_DIR_PATTERN.exec(entry)?.[1] ?? entry;
    const file = join(outDir, entry, 'checks.json');
    if (!existsSync(file)) continue;
    /** @type {Array<{id: string, name: string, description?: string, status: string, errorMessage?: string}>} */
    const checks = JSON.parse(await readFile(file, 'utf8'));
    const issue = (c) => ({ scenario: name, id: c.id, name: c.name, description: c.description, errorMessage: c.errorMessage });
    failures.push(...checks.filter((c) => c.status === 'FAILURE').map(issue));
    warnings.push(...checks.filter((c) => c.status === 'WARNING').map(issue));
    scenarios.push({
      scenario: name,
      passed: checks.filter((c) => c.status === 'SUCCESS').length,
      failed: checks.filter((c) => c.status === 'FAILURE').length,
      warnings: checks.filter((c) => c.status === 'WARNING').length,
      scored: scored ? scored.has(name) : true,
    });
  }

  const total = TOTAL_PATTERN.exec(stdout);
  let passed;
  let failed;
  if (total) {
    passed = Number(total[1]);
    failed = Number(total[2]);
  } else if (scenario && scenarios.length === 1) {
    // A single --scenario run prints no `Total:` line; its checks.json says the same.
    ({ passed, failed } = scenarios[0]);
  } else {
    throw new Error(
      `The conformance CLI exited with ${exitCode} without a "Total: N passed, M failed" line.\n` +
        `stderr (tail):\n${tail(stderr)}\nstdout (tail):\n${tail(stdout)}`,
    );
  }
  const scoredNames = new Set(scenarios.filter((s) => s.scored).map((s) => s.scenario));
  const scoredFailures = failures.filter((f) => scoredNames.has(f.scenario));
  if (scored) {
    const missing = [...scored].filter((name) => !scenarios.some((s) => s.scenario === name));
    if (!scenario && missing.length > 0) {
      throw new Error(
        `The conformance CLI wrote no checks.json for scored scenario(s) ${missing.join(', ')} ` +
          `(exit ${exitCode}).\nstdout (tail):\n${tail(stdout)}`,
      );
    }
  }
  return {
    passed, failed, total: passed + failed, exitCode, scenarios, failures, warnings, scoredFailures, outDir, stdout, stderr,
  };
}

/**
 * The server scenarios a revision's frozen requirements file scores (its `server:` list;
 * `not_scored` entries run but never count).
 * @param {string} revision e.g. '2026-07-28'
 * @returns {Promise<Set<string>>}
 */
export async function scoredServerScenarios(revision) {
  const file = join(REVISION_CLI, 'requirements', `${revision}.yaml`);
  if (!existsSync(file)) throw new Error(`No conformance requirements for revision ${revision} at ${file}: ${INSTALL_HINT}.`);
  // The file is a plain two-level YAML list: `server:` then `  - name` lines until the next key.
  const names = new Set();
  let inServer = false;
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (/^\S/.test(line)) inServer = /^server:\s*$/.test(line);
    else if (inServer) {
      const item = /^\s+-\s+([\w/.-]+)\s*$/.exec(line);
      if (item) names.add(item[1]);
    }
  }
  if (names.size === 0) throw new Error(`${file} lists no scored server scenarios; the file format changed?`);
  return names;
}

/** One line per failed check, for assertion messages. */
export function describeFailures(result) {
  return result.failures
    .map((f) => `${f.scenario} › ${f.id}: ${f.errorMessage ?? f.description ?? 'failed'}`)
    .join('\n');
}

function spawnCollect(command, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`The conformance CLI did not finish within ${timeoutMs} ms; stdout (tail):\n${tail(stdout)}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`Could not start ${command}: ${err.message}; ${INSTALL_HINT}.`));
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

function tail(text, lines = 40) {
  return text.split('\n').slice(-lines).join('\n');
}

// Shell use: prints the summary and exits 1 on any failed check.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [url, ...rest] = process.argv.slice(2);
  if (!url) {
    console.error('usage: node test/conformance/run.mjs URL [--scenario NAME] [--suite all|active|pending] [-o DIR]');
    process.exit(2);
  }
  const flag = (name) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const requirements = flag('--requirements');
  const result = await runConformance(url, {
    scenario: flag('--scenario'), suite: flag('--suite'), outDir: flag('-o'), requirements,
  });
  for (const s of result.scenarios) {
    const mark = s.failed === 0 ? '✓' : '✗';
    console.log(`${mark} ${s.scenario}: ${s.passed} passed, ${s.failed} failed, ${s.warnings} warnings${s.scored ? '' : ' (not scored)'}`);
  }
  const counted = requirements ? result.scoredFailures : result.failures;
  if (counted.length > 0) console.log(`\nFailed checks:\n${describeFailures({ failures: counted })}`);
  console.log(`\nTotal: ${result.passed} passed, ${result.failed} failed (results in ${result.outDir})`);
  if (requirements) console.log(`Scored for ${requirements}: ${counted.length} failed check(s)`);
  process.exit(counted.length > 0 ? 1 : 0);
}

// Runs the official MCP conformance CLI (server scenarios) against a URL and
// returns a structured summary. The CLI needs Node >= 22, so it is spawned with
// the `node` installed in this folder, never the project's Node 20.
//
//   import { runConformance } from './conformance/run.mjs';
//   const r = await runConformance('http://127.0.0.1:PORT/mcp', { outDir });
//
// Also usable from a shell: node test/conformance/run.mjs URL [--scenario NAME] [--suite all|active]

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const NODE22_BIN = join(HERE, 'node_modules', '.bin', 'node');
export const CONFORMANCE_CLI = join(HERE, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const INSTALL_HINT = 'run `node scripts/ensure-conformance.mjs` (or `npm ci --prefix test/conformance`)';

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
export function assertConformanceInstalled() {
  if (checkedNode) return;
  if (!existsSync(NODE22_BIN) || !existsSync(CONFORMANCE_CLI)) {
    throw new Error(`The conformance CLI is not installed under ${HERE}: ${INSTALL_HINT}.`);
  }
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
  assertConformanceInstalled();
  const { suite = 'all', scenario, timeoutMs = 10 * 60_000 } = options;
  const outDir = options.outDir ?? (await mkdtemp(join(tmpdir(), 'switchyard-conformance-')));
  await mkdir(outDir, { recursive: true });
  // Only this run's result folders are read, so a reused outDir never mixes runs.
  const before = new Set(await readdir(outDir));

  const args = [CONFORMANCE_CLI, 'server', '--url', url, '-o', outDir];
  if (scenario) args.push('--scenario', scenario);
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
  return { passed, failed, total: passed + failed, exitCode, scenarios, failures, warnings, outDir, stdout, stderr };
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
  const result = await runConformance(url, { scenario: flag('--scenario'), suite: flag('--suite'), outDir: flag('-o') });
  for (const s of result.scenarios) {
    console.log(`${s.failed === 0 ? '✓' : '✗'} ${s.scenario}: ${s.passed} passed, ${s.failed} failed, ${s.warnings} warnings`);
  }
  if (result.failed > 0) console.log(`\nFailed checks:\n${describeFailures(result)}`);
  console.log(`\nTotal: ${result.passed} passed, ${result.failed} failed (results in ${result.outDir})`);
  process.exit(result.failed > 0 ? 1 : 0);
}

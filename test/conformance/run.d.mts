// Types for run.mjs, so TypeScript tests import it with checked shapes.

export interface CheckIssue {
  scenario: string;
  id: string;
  name: string;
  description?: string;
  errorMessage?: string;
}

export interface ScenarioSummary {
  scenario: string;
  passed: number;
  failed: number;
  warnings: number;
  /** Whether the revision's frozen requirements score it (always true without `requirements`). */
  scored: boolean;
}

export interface ConformanceResult {
  /** Checks with status SUCCESS, from the CLI's `Total: N passed, M failed` line. */
  passed: number;
  /** Checks with status FAILURE. */
  failed: number;
  /** passed + failed (warnings and info checks are not counted). */
  total: number;
  exitCode: number | null;
  scenarios: ScenarioSummary[];
  failures: CheckIssue[];
  warnings: CheckIssue[];
  /** Failures in scored scenarios only (all failures without `requirements`). */
  scoredFailures: CheckIssue[];
  outDir: string;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Where the CLI writes `server-<scenario>-<time>/checks.json`; a fresh temp dir when absent. */
  outDir?: string;
  /** Default 'all': the active scenarios plus the pending ones. Ignored with `scenario`. */
  suite?: 'all' | 'active' | 'pending';
  scenario?: string;
  /** Run the CLI pinned for this revision with `--requirements` (replaces `suite`), e.g. '2026-07-28'. */
  requirements?: '2026-07-28';
  /** Default 10 minutes. */
  timeoutMs?: number;
}

export const NODE22_BIN: string;
export const CONFORMANCE_CLI: string;
export const CONFORMANCE_2026_CLI: string;
export function assertConformanceInstalled(cli?: string): void;
export function scoredServerScenarios(revision: string): Promise<Set<string>>;
export function runConformance(url: string, options?: RunOptions): Promise<ConformanceResult>;
export function describeFailures(result: Pick<ConformanceResult, 'failures'>): string;

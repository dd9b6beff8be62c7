/** `switchyard validate [paths…]`: every problem as `file:line: message`; exit 1 on any problem. */
import { validatePaths } from './config/index.js';

export function runValidate(paths: string[]): number {
  const result = validatePaths(paths);
  if (result.files.length === 0 && result.problems.length === 0) {
    const where = paths.length > 0 ? paths.join(', ') : `${process.cwd()} (no gateway.yaml, servers.d/ or agents.d/)`;
    process.stderr.write(`nothing to validate: no manifests found in ${where}; pass a file or directory, e.g. switchyard validate servers.d\n`);
    return 1;
  }
  for (const line of result.report) process.stdout.write(`${line}\n`);
  for (const line of result.warningReport) process.stdout.write(`${line}\n`);
  for (const s of result.servers) {
    process.stdout.write(`server ${s.name}: ${s.transport} (${s.source.file}:${s.source.line}); tools exposed as ${s.name}__{tool}\n`);
  }
  for (const a of result.agents) process.stdout.write(`agent ${a.id}: ${a.source.file}:${a.source.line}\n`);
  if (result.problems.length > 0) {
    process.stderr.write(`${result.problems.length} problem(s) found in ${result.files.length} file(s)\n`);
    return 1;
  }
  const noted = result.warnings.length > 0 ? `, ${result.warnings.length} warning(s) above` : '';
  process.stdout.write(`ok: ${result.files.length} file(s) valid${noted}\n`);
  return 0;
}

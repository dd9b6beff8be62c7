/** Turning schema and shape errors into `file:line: message` problems that say what to do next. */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { ZodError, ZodIssue } from 'zod';
import type { ParsedSource, ValuePath } from './source.js';
import type { PathProblem } from './interpolate.js';
import type { ConfigProblem } from './types.js';

/** Names of servers and agents: lowercase, digits and '-', up to 32 characters. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const NAME_RULE = "lowercase letters, digits and '-', starting with a letter or digit, at most 32 characters";

/** A default name derived from a file stem or map key, folded into NAME_PATTERN when it can be ("My_Server" → "my-server"). */
export function deriveName(raw: string): string {
  const folded = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/, '');
  return NAME_PATTERN.test(folded) ? folded : raw;
}

/** The warning for a default name that had to be folded into NAME_PATTERN: the rename is said, with the key that makes it explicit. */
export function renameWarning(raw: string, derived: string, origin: string, key: 'name' | 'id'): string | undefined {
  if (derived === raw || !NAME_PATTERN.test(derived)) return undefined;
  return `'${raw}' (the ${origin}) is used as ${key === 'id' ? 'agent id' : 'server name'} '${derived}'; add '${key}: ${derived}' to make the rename explicit`;
}

export function formatPath(path: ValuePath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** "Expected …" → "expected …", but "API key …" stays. */
function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s[0].toLowerCase() + s.slice(1) : s;
}

function issueMessage(issue: ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    return `missing required field '${where}'; add it`;
  }
  if (issue.code === 'invalid_type') {
    return `${where || 'file'}: expected ${issue.expected}, got ${issue.received}; change the value's type`;
  }
  if (issue.code === 'invalid_enum_value') {
    return `${where}: '${String(issue.received)}' is not one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}`;
  }
  if (issue.code === 'invalid_literal') {
    return `${where}: must be '${String(issue.expected)}'`;
  }
  return where ? `${where}: ${lowerFirst(issue.message)}` : lowerFirst(issue.message);
}

/** Map each zod issue to the line of the key it is about; `base` is where the validated value sits in the file. */
export function zodProblems(error: ZodError, src: ParsedSource, base: ValuePath = []): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        const where = issue.path.length ? ` in '${formatPath(issue.path)}'` : '';
        problems.push({
          file: src.file,
          line: src.lineAt([...base, ...path]),
          message: `unknown field '${key}'${where}; remove it or check its spelling`,
        });
      }
      continue;
    }
    if (issue.code === 'invalid_union') {
      // Report the branch that got furthest, not the generic "Invalid input".
      const deepest = issue.unionErrors.flatMap((e) => e.issues).sort((a, b) => b.path.length - a.path.length)[0];
      if (deepest) {
        problems.push({ file: src.file, line: src.lineAt([...base, ...deepest.path]), message: issueMessage(deepest) });
        continue;
      }
    }
    problems.push({ file: src.file, line: src.lineAt([...base, ...issue.path]), message: issueMessage(issue) });
  }
  return problems;
}

/** Schema problems on a line that already has an interpolation problem only repeat it (an unset variable leaves an empty value). */
export function withoutRepeats(first: readonly ConfigProblem[], then: readonly ConfigProblem[]): ConfigProblem[] {
  const lines = new Set(first.map((p) => p.line));
  return [...first, ...then.filter((p) => !lines.has(p.line))];
}

export function pathProblems(items: readonly PathProblem[], src: ParsedSource, base: ValuePath = []): ConfigProblem[] {
  return items.map((p) => ({ file: src.file, line: src.lineAt([...base, ...p.path]), message: p.message }));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const CONFIG_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Manifest files of a directory, sorted; hidden files and editor leftovers are skipped. Missing directory → []. */
export function listConfigFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('.') && !n.endsWith('~') && CONFIG_EXTENSIONS.has(extname(n).toLowerCase()))
    .sort()
    .map((n) => join(dir, n))
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
}

export function fileStem(file: string): string {
  return basename(file, extname(file));
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.message}`;
}

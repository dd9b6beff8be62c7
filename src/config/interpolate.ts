/**
 * `${…}` interpolation in configuration string values:
 *   ${VAR}              from the environment (a missing variable is a problem)
 *   ${VAR:-fallback}    from the environment, or the fallback when unset or empty
 *   ${env:VAR}          the same as ${VAR} (VS Code / Cursor spelling)
 *   ${file:path}        a file's contents without its trailing newline; path relative to the manifest's directory
 *   ${workspaceFolder}  the gateway's working directory (VS Code spelling)
 *   ${dataDir}          the gateway's data directory (servers.d manifests only)
 *   $${                 a literal "${"
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ValuePath } from './source.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface InterpolationContext {
  env: Env;
  /** Directory of the file being read; `${file:…}` paths are relative to it. */
  baseDir: string;
  /** The gateway's working directory, for `${workspaceFolder}`. */
  workspaceDir: string;
  /** The gateway's data directory, for `${dataDir}`; absent where it is not known yet (gateway.yaml itself). */
  dataDir?: string;
}

export interface PathProblem {
  path: ValuePath;
  message: string;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function expandOne(expr: string, ctx: InterpolationContext): { value?: string; message?: string } {
  if (expr === 'workspaceFolder') return { value: ctx.workspaceDir };
  if (expr === 'dataDir') {
    return ctx.dataDir !== undefined ? { value: ctx.dataDir } : { message: '${dataDir} is only known in servers.d manifests; write the path here directly' };
  }
  if (expr.startsWith('file:')) {
    const rel = expr.slice(5).trim();
    if (!rel) return { message: '${file:} needs a path, e.g. ${file:secrets/token.txt}' };
    const full = resolve(ctx.baseDir, rel);
    try {
      return { value: readFileSync(full, 'utf8').replace(/\r?\n$/, '') };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return { message: `\${file:${rel}}: cannot read ${full} (${code}); create the file or fix the path (relative to this file's directory)` };
    }
  }
  if (expr.startsWith('input:')) {
    return { message: `\${${expr}}: editor input variables are not supported; pass the value through an environment variable, e.g. \${MY_VAR}` };
  }
  const name = expr.startsWith('env:') ? expr.slice(4) : expr;
  const fallbackAt = name.indexOf(':-');
  const varName = fallbackAt === -1 ? name : name.slice(0, fallbackAt);
  if (!VAR_NAME.test(varName)) {
    return { message: `\${${expr}}: '${varName}' is not a variable name; use \${NAME}, \${NAME:-fallback}, \${env:NAME} or \${file:path}` };
  }
  const value = ctx.env[varName];
  if (fallbackAt !== -1) return { value: value ? value : name.slice(fallbackAt + 2) };
  if (value === undefined) {
    return { message: `environment variable ${varName} is not set; set it in the gateway's environment or write \${${varName}:-fallback}` };
  }
  return { value };
}

/** Expand every `${…}` in one string; problems name what to do about each unresolved reference. */
export function interpolateString(text: string, ctx: InterpolationContext): { value: string; problems: string[] } {
  if (!text.includes('${')) return { value: text, problems: [] };
  let out = '';
  const problems: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (text.startsWith('${', i)) {
      const close = text.indexOf('}', i + 2);
      if (close === -1) {
        problems.push(`unclosed "\${" in "${text}"; close it with "}" or write "$\${" for a literal "\${"`);
        out += text.slice(i);
        break;
      }
      const { value, message } = expandOne(text.slice(i + 2, close), ctx);
      if (message) problems.push(message);
      out += value ?? '';
      i = close + 1;
      continue;
    }
    out += text[i];
    i++;
  }
  return { value: out, problems };
}

/** Expand strings everywhere in a plain data tree (keys stay as written). */
export function interpolateTree(value: unknown, ctx: InterpolationContext, path: ValuePath = []): { value: unknown; problems: PathProblem[] } {
  const problems: PathProblem[] = [];
  const walk = (v: unknown, at: ValuePath): unknown => {
    if (typeof v === 'string') {
      const r = interpolateString(v, ctx);
      for (const message of r.problems) problems.push({ path: at, message });
      return r.value;
    }
    if (Array.isArray(v)) return v.map((item, idx) => walk(item, [...at, idx]));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...at, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, path), problems };
}

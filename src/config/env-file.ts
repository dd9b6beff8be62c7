/** dotenv-format files (`envFile` in a manifest, as VS Code's mcp.json has it): KEY=value lines, `#` comments, quotes. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$/;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

function unquote(raw: string): string | undefined {
  const q = raw[0];
  if (q === '"' || q === "'" || q === '`') {
    const end = raw.indexOf(q, 1);
    if (end === -1) return undefined;
    const body = raw.slice(1, end);
    return q === '"' ? body.replace(/\\([nrt"\\])/g, (_, c: string) => ESCAPES[c]!) : body;
  }
  // Unquoted: a `#` after whitespace starts a comment.
  return raw.replace(/\s+#.*$/, '');
}

/** Parse dotenv text; a line that is neither blank, a comment nor KEY=value is an error naming its line. */
export function parseEnvText(text: string): { env: Record<string, string>; error?: { line: number; message: string } } {
  const env: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    const m = LINE.exec(line);
    const value = m ? unquote(m[2]!) : undefined;
    if (!m || value === undefined) {
      return { env, error: { line: i + 1, message: m ? 'unclosed quote' : 'expected KEY=value' } };
    }
    env[m[1]!] = value;
  }
  return { env };
}

/** Read an env file, `path` relative to `baseDir` (the manifest's folder); the message says what to fix. */
export function readEnvFile(path: string, baseDir: string): { env?: Record<string, string>; message?: string } {
  const full = resolve(baseDir, path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { message: `envFile: cannot read ${full} (${code}); create the file or fix the path (relative to this file's folder)` };
  }
  const parsed = parseEnvText(text);
  if (parsed.error) return { message: `envFile ${full}:${parsed.error.line}: ${parsed.error.message}; write each line as KEY=value` };
  return { env: parsed.env };
}

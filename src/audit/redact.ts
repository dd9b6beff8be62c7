/** Argument redaction: keys that look like secrets are replaced before anything is stored or logged. */
import { DEFAULT_REDACT } from '../config/gateway-schema.js';

export const REDACTED = '[REDACTED]';

/** Used when the configuration gives no list at all; the same list gateway.yaml defaults to. */
export const DEFAULT_REDACT_PATTERNS: readonly string[] = DEFAULT_REDACT;

export type Redactor = (value: unknown) => unknown;

/** Words of a key name: camelCase humps, runs of capitals, digit runs; `-`, `_`, `.`, spaces and the like separate. */
const WORD = /\p{Lu}+(?!\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lo}+|\p{N}+/gu;

function words(name: string): string[] {
  return (name.match(WORD) ?? []).map((w) => w.toLowerCase());
}

/** Most distinct key names a redactor remembers its verdict for. */
const MAX_CACHED_KEYS = 4096;

/**
 * Compile redaction patterns once. Key names and patterns are both read as words, case-insensitively: a key is
 * redacted when consecutive words of it spell a pattern, so `api_key` covers `apiKey`, `API_KEY`, `x-api-key` and
 * `apikey`, and `token` covers `accessToken` but not `tokenizer` or `max_tokens`. Applied at any depth (objects and
 * arrays); the input is never mutated and untouched subtrees are shared, not copied.
 */
export function compileRedactor(patterns: readonly string[] = DEFAULT_REDACT_PATTERNS): Redactor {
  const needles = new Set(patterns.map((p) => words(p).join('')).filter((p) => p.length > 0));
  if (needles.size === 0) return (value) => value;
  const longest = Math.max(...[...needles].map((n) => n.length));
  const verdicts = new Map<string, boolean>();
  const spellsPattern = (k: string): boolean => {
    const w = words(k);
    for (let i = 0; i < w.length; i++) {
      let joined = '';
      for (let j = i; j < w.length; j++) {
        joined += w[j];
        if (joined.length > longest) break;
        if (needles.has(joined)) return true;
      }
    }
    return false;
  };
  const isSecretKey = (k: string): boolean => {
    let verdict = verdicts.get(k);
    if (verdict === undefined) {
      verdict = spellsPattern(k);
      if (verdicts.size >= MAX_CACHED_KEYS) verdicts.clear();
      verdicts.set(k, verdict);
    }
    return verdict;
  };
  const walk = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value !== 'object') return value;
    // Deeper than any real argument tree: cut it off rather than recurse without bound.
    if (depth > 64) return '[TRUNCATED]';
    if (Array.isArray(value)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const next = walk(value[i], depth + 1);
        if (next !== value[i]) (out ??= value.slice())[i] = next;
      }
      return out ?? value;
    }
    let out: Record<string, unknown> | undefined;
    const obj = value as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      const next = isSecretKey(k) ? REDACTED : walk(obj[k], depth + 1);
      if (next !== obj[k]) (out ??= { ...obj })[k] = next;
    }
    return out ?? value;
  };
  return (value) => walk(value, 0);
}

/** One-off redaction (compile once with compileRedactor on hot paths). */
export function redactArgs(value: unknown, patterns?: readonly string[]): unknown {
  return compileRedactor(patterns)(value);
}

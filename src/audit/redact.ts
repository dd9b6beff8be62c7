/** Argument redaction: keys that look like secrets are replaced before anything is stored or logged. */
import { DEFAULT_REDACT } from '../config/gateway-schema.js';

export const REDACTED = '[REDACTED]';

/** Used when the configuration gives no list at all; the same list gateway.yaml defaults to. */
export const DEFAULT_REDACT_PATTERNS: readonly string[] = DEFAULT_REDACT;

export type Redactor = (value: unknown) => unknown;

/**
 * Compile redaction patterns once: a key is redacted when it contains any pattern, case-insensitively, at any depth
 * (objects and arrays). The input is never mutated; untouched subtrees are shared, not copied.
 */
export function compileRedactor(patterns: readonly string[] = DEFAULT_REDACT_PATTERNS): Redactor {
  const needles = [...new Set(patterns.map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0))];
  if (needles.length === 0) return (value) => value;
  const isSecretKey = (k: string): boolean => {
    const lower = k.toLowerCase();
    for (const n of needles) if (lower.includes(n)) return true;
    return false;
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

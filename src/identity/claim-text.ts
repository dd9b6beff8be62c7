/** Untrusted values (token claims, header values) as they appear in messages, logs and header parameters. */

const MAX_SHOWN = 120;

/** JSON-quoted, visible ASCII only (anything else escaped as \uXXXX), cut at 120 characters. */
export function shown(value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? value : String(value)).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 2)}…"` : text;
}

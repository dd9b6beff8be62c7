/** How text from the inside is shown outside: manifest URLs without their credentials, echoed names capped. */

const MASK = '***';

/**
 * A manifest URL as it may be shown in errors and logs: scheme, host, port and path; userinfo and query values
 * masked (the parameter names stay, so an operator can still tell which URL is meant), the fragment dropped.
 */
export function safeUrl(url: string | URL): string {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return '(an invalid URL)';
  }
  const auth = u.username || u.password ? `${MASK}@` : '';
  const keys = [...u.searchParams.keys()];
  const query = keys.length ? `?${keys.map((k) => `${encodeURIComponent(k)}=${MASK}`).join('&')}` : '';
  return `${u.protocol}//${auth}${u.host}${u.pathname}${query}`;
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

/** Free text (an error from a library, a child's stderr) with every URL in it rendered by safeUrl. */
export function maskUrls(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_IN_TEXT, (m) => {
    // Punctuation that ends a sentence or clause is not part of the URL.
    const tail = /[.,;:!?)\]]+$/.exec(m)?.[0] ?? '';
    return safeUrl(m.slice(0, m.length - tail.length)) + tail;
  });
}

export const ECHO_MAX = 80;

/** A caller-supplied name echoed in an error: at most `max` characters, then an ellipsis. */
export function clip(text: string, max = ECHO_MAX): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

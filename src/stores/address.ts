/** A shared server's address as logs, refusals and /readyz may show it: the password masked, the rest kept. */
export function redactUrl(url: string, what = 'address'): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return `(unparseable ${what})`;
  }
}

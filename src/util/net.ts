/** Loopback tests shared by the rooms that decide who may reach the gateway (identity, admin API, HTTP adapters). */

/** Whether a socket's remote address is this machine (IPv4 127/8, IPv6 ::1, and IPv4-mapped loopback). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '127.0.0.1' || address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1' || address.startsWith('::ffff:127.');
}

/** Whether a listen host keeps the gateway on this machine: the only place it may run without auth. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || isLoopback(host);
}

/** DNS-rebinding protection: Host and Origin must name this gateway (loopback names or configured ones). */
import type { IncomingMessage } from 'node:http';

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]', '::1'];

export function createHostCheck(listenHost: string, allowedHosts: string[], allowedOrigins: string[]): (req: IncomingMessage) => string | undefined {
  const hosts = new Set([...LOOPBACK_HOSTS, ...allowedHosts.map((h) => h.toLowerCase())]);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') hosts.add(listenHost.toLowerCase());
  const origins = new Set(allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  const anyHost = hosts.has('*');
  return (req) => {
    const host = (req.headers.host ?? '').toLowerCase();
    const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    if (!anyHost && !hosts.has(hostname) && !hosts.has(host)) return `Host '${host}' is not allowed; add it to allowedHosts in gateway.yaml.`;
    const origin = req.headers.origin;
    if (origin && origin !== 'null') {
      const o = origin.toLowerCase().replace(/\/+$/, '');
      if (origins.has(o) || origins.has('*')) return undefined;
      let originHost: string;
      try {
        originHost = new URL(o).hostname;
      } catch {
        return `Origin '${origin}' is malformed.`;
      }
      if (!LOOPBACK_HOSTS.includes(originHost) && !LOOPBACK_HOSTS.includes(`[${originHost}]`)) return `Origin '${origin}' is not allowed; add it to allowedOrigins in gateway.yaml.`;
    } else if (origin === 'null') return "Origin 'null' is not allowed.";
    return undefined;
  };
}

/** Where the other replicas reach this one: state.advertiseUrl, else derived from the listen address (SPEC §12). */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export interface AdvertiseSources {
  env?: NodeJS.ProcessEnv;
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/**
 * gateway.yaml's state.advertiseUrl wins; a concrete listen host gives http://host:port; a wildcard host (0.0.0.0, ::)
 * takes SWITCHYARD_ADVERTISE_URL, else the first non-internal IPv4 address; undefined when none of these exists.
 */
export function advertiseUrlFor(config: { host: string; state: { advertiseUrl?: string } }, port: number, sources: AdvertiseSources = {}): string | undefined {
  if (config.state.advertiseUrl) return config.state.advertiseUrl;
  const host = config.host;
  if (host !== '0.0.0.0' && host !== '::' && host !== '[::]') return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  const fromEnv = (sources.env ?? process.env).SWITCHYARD_ADVERTISE_URL;
  if (fromEnv) {
    if (!/^https?:\/\/[^\s/]+/i.test(fromEnv)) throw new Error(`SWITCHYARD_ADVERTISE_URL '${fromEnv}' is not an http(s) URL: set it to where the other replicas reach this one, e.g. http://10.0.0.7:8080`);
    return fromEnv.replace(/\/+$/, '');
  }
  for (const list of Object.values((sources.interfaces ?? networkInterfaces)())) {
    for (const info of list ?? []) if (info.family === 'IPv4' && !info.internal) return `http://${info.address}:${port}`;
  }
  return undefined;
}

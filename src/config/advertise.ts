/** Where the other replicas reach this one: state.advertiseUrl, else derived from the listen address (SPEC §12). */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

export interface AdvertiseSources {
  env?: NodeJS.ProcessEnv;
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/**
 * gateway.yaml's state.advertiseUrl wins; a concrete listen host gives http://host:port; a wildcard host (0.0.0.0, ::)
 * takes SWITCHYARD_ADVERTISE_URL, else the first non-internal IPv4 address; throws, saying what to set, when none exists.
 */
export function advertiseUrlFor(config: { host: string; state: { advertiseUrl?: string } }, port: number, sources: AdvertiseSources = {}): string {
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
  throw new Error(`cannot tell the other replicas where this one is reached (listening on ${host}, no non-internal IPv4 address): set state.advertiseUrl in gateway.yaml or SWITCHYARD_ADVERTISE_URL, e.g. http://10.0.0.7:${port}`);
}

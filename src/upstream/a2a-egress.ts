/**
 * Where the gateway may send requests on behalf of an A2A agent. A card names its own endpoints, so whoever writes
 * the card chooses where the gateway posts: never to the gateway's own listener (its admin API would take the
 * request as a local one), never to link-local or cloud metadata addresses unless the manifest lists the origin in
 * `allowOrigins`, and the manifest's headers (credentials) only to the origin of its `url` and those it allows.
 * Host names are resolved before deciding: a name that resolves to a refused address is refused.
 */
import { lookup as lookupCallback, type LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ServerManifest } from '../config/types.js';

/** The gateway's own listener, learnt once the port is bound. */
export interface Listener {
  host: string;
  port: number;
  /** `publicUrl` of gateway.yaml: a proxy in front of the gateway reaches it too. */
  publicUrl?: string;
}

export type EgressVerdict = { ok: true; credentials: boolean } | { ok: false; why: 'self' | 'link-local'; message: string };

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('0.0.0.0', 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addAddress('::', 'ipv6');

const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');
LINK_LOCAL.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud metadata
LINK_LOCAL.addAddress('fd00:ec2::254', 'ipv6'); // AWS metadata over IPv6

const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'metadata.azure.com', 'instance-data', 'instance-data.ec2.internal']);
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
const RESOLVE_TTL_MS = 30_000;

const family = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');
const bare = (hostname: string): string => (hostname.startsWith('[') ? hostname.slice(1, -1) : hostname).toLowerCase();
const portOf = (u: URL): number => (u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80);

export function isLoopbackIp(ip: string): boolean {
  return isIP(ip) !== 0 && LOOPBACK.check(ip, family(ip));
}

export function isLinkLocalIp(ip: string): boolean {
  return isIP(ip) !== 0 && LINK_LOCAL.check(ip, family(ip));
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

export class A2aEgress {
  private listener?: Listener;
  private readonly resolved = new Map<string, { at: number; addresses: Promise<string[]> }>();

  constructor(private readonly resolve: (host: string) => Promise<string[]> = defaultResolve) {}

  /** Called once the gateway listens (the port is only known then). */
  setListener(listener: Listener): void {
    this.listener = listener;
  }

  /** Whether the manifest's headers may go to this URL: the manifest's own origin, or one it lists in allowOrigins. */
  sendsCredentials(url: URL, manifest: ServerManifest): boolean {
    return this.allowedOrigins(manifest).has(url.origin);
  }

  private allowedOrigins(manifest: ServerManifest): Set<string> {
    const origins = new Set<string>();
    const own = manifest.url ? originOf(manifest.url) : undefined;
    if (own) origins.add(own);
    for (const o of manifest.allowOrigins ?? []) {
      const parsed = originOf(o);
      if (parsed) origins.add(parsed);
    }
    return origins;
  }

  /** May the gateway send this agent's request to `url`? Resolves host names (cached briefly) before deciding. */
  async check(url: URL, manifest: ServerManifest): Promise<EgressVerdict> {
    const host = bare(url.hostname);
    return this.verdict(url, manifest, isIP(host) ? [host] : await this.addresses(host));
  }

  /**
   * A `lookup` for node:http that applies the same rules to the addresses it connects to, so a name that resolves
   * differently by then (DNS rebinding) still cannot reach a refused address.
   */
  lookupFor(url: URL, manifest: ServerManifest): LookupFunction {
    return (hostname, options, callback) => {
      lookupCallback(hostname, { ...options, all: true }, (err, list: LookupAddress[]) => {
        if (err) return callback(err, '', 0);
        const verdict = this.verdict(url, manifest, list.map((a) => a.address));
        if (!verdict.ok) return callback(Object.assign(new EgressRefused(manifest.name, verdict.why, verdict.message, url.toString()), { code: 'EGRESS_REFUSED' }), '', 0);
        if (options.all) return (callback as (e: null, all: LookupAddress[]) => void)(null, list);
        callback(null, list[0]!.address, list[0]!.family);
      });
    };
  }

  private verdict(url: URL, manifest: ServerManifest, addresses: readonly string[]): EgressVerdict {
    const host = bare(url.hostname);
    const port = portOf(url);
    const allowed = this.allowedOrigins(manifest);
    if (this.isSelf(url, host, port, addresses)) {
      return { ok: false, why: 'self', message: `A2A agent '${manifest.name}' is refused: its agent card points the gateway at the gateway's own listener, which it never calls for an agent; the agent's card must name its own endpoint.` };
    }
    if (!allowed.has(url.origin) && (METADATA_HOSTS.has(host) || addresses.some(isLinkLocalIp))) {
      return {
        ok: false,
        why: 'link-local',
        message: `A2A agent '${manifest.name}' is refused: its agent card points at a link-local or cloud metadata address; if that is intended, an admin can list the origin in allowOrigins of its servers.d manifest.`,
      };
    }
    return { ok: true, credentials: allowed.has(url.origin) };
  }

  private isSelf(url: URL, host: string, port: number, addresses: readonly string[]): boolean {
    const l = this.listener;
    if (!l) return false;
    if (l.publicUrl && originOf(l.publicUrl) === url.origin) return true;
    if (port !== l.port) return false;
    const listenHost = bare(l.host);
    if (host === 'localhost' || host.endsWith('.localhost')) return true;
    return addresses.some((ip) => isLoopbackIp(ip) || ip === listenHost || (WILDCARD_HOSTS.has(listenHost) && localAddresses().has(ip)));
  }

  private addresses(host: string): Promise<string[]> {
    const now = Date.now();
    const hit = this.resolved.get(host);
    if (hit && now - hit.at < RESOLVE_TTL_MS) return hit.addresses;
    const addresses = this.resolve(host).catch(() => [] as string[]); // an unresolvable name fails at connect time
    if (this.resolved.size > 1000) this.resolved.clear();
    this.resolved.set(host, { at: now, addresses });
    return addresses;
  }

  /**
   * A fetch for this agent: every URL (and every redirect) is checked before it is requested, and the manifest's
   * headers are attached only where they may go. A refusal rejects with an EgressRefused.
   */
  fetchFor(manifest: ServerManifest): typeof fetch {
    const headers = manifest.headers;
    return async (input, init) => {
      let url = new URL(input instanceof Request ? input.url : String(input));
      let request = input instanceof Request ? input : undefined;
      let opts: RequestInit = { ...init, redirect: 'manual' };
      for (let hop = 0; ; hop++) {
        const verdict = await this.check(url, manifest);
        if (!verdict.ok) throw new EgressRefused(manifest.name, verdict.why, verdict.message, url.toString());
        const merged = new Headers(verdict.credentials ? headers : {});
        new Headers(request?.headers).forEach((v, k) => merged.set(k, v));
        new Headers(init?.headers).forEach((v, k) => merged.set(k, v));
        const res = await fetch(request ? new Request(url, request) : url, { ...opts, headers: merged });
        const location = res.headers.get('location');
        if (res.status < 300 || res.status > 399 || !location || hop >= 5) return res;
        await res.body?.cancel();
        url = new URL(location, url);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && (opts.method ?? request?.method ?? 'GET') !== 'GET')) {
          opts = { ...opts, method: 'GET', body: undefined };
          request = undefined;
        }
      }
    };
  }
}

/** Thrown (and rendered to callers without the URL) when a request would leave for a refused address. */
export class EgressRefused extends Error {
  constructor(readonly server: string, readonly why: 'self' | 'link-local', message: string, readonly url: string) {
    super(message);
    this.name = 'EgressRefused';
  }
}

async function defaultResolve(host: string): Promise<string[]> {
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

let interfaceAddresses: { at: number; set: Set<string> } | undefined;

/** The machine's own addresses (a wildcard listener answers on each of them). */
function localAddresses(): Set<string> {
  const now = Date.now();
  if (!interfaceAddresses || now - interfaceAddresses.at > RESOLVE_TTL_MS) {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) set.add(a.address.toLowerCase());
    interfaceAddresses = { at: now, set };
  }
  return interfaceAddresses.set;
}

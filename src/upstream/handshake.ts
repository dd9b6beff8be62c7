/**
 * The handshake of one upstream session: server/discover for 2026-07-28, initialize for 2025-11-25, and under
 * `auto` (the http default) the probe that chooses between them (decision record 0029).
 */
import type { Logger } from 'pino';
import type { ServerManifest } from '../config/types.js';
import type { Params, RpcResponse } from '../util/jsonrpc.js';
import { clip, maskUrls } from '../util/shown.js';
import { asUpstreamError, UpstreamError, withoutMcpPrefix } from './errors.js';
import { MODERN_UPSTREAM_REVISION, PROBE_TIMEOUT_MS, probeVerdict, readDiscover, wantedRevision } from './modern.js';
import type { ClientInit } from './session.js';
import type { UpstreamTransport } from './transport.js';

export type Speaks = 'modern' | 'legacy';

/** What the handshake learnt, in the shape an initialize result gave. */
export interface Handshaken {
  protocolVersion?: string;
  capabilities: Record<string, unknown>;
  serverInfo: Record<string, unknown>;
  instructions?: string;
}

export interface HandshakeHost {
  readonly manifest: ServerManifest;
  readonly transport: UpstreamTransport;
  readonly init: ClientInit;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  /** From now on the session speaks this revision (while modern, every request carries the envelope). */
  speak(revision: Speaks | undefined): void;
  /** One handshake request; a failure on the gateway's side (timeout, HTTP status, network) rejects with it. */
  ask(method: string, params: Params | undefined, timeoutMs: number): Promise<RpcResponse>;
}

/** What each upstream was found to speak under `auto`, per manifest: only a legacy upstream's first session probes. */
const verdicts = new WeakMap<ServerManifest, Speaks>();

/** Run the handshake; a verdict remembered before it is forgotten when it fails (the upstream may have been replaced). */
export async function handshake(host: HandshakeHost): Promise<Handshaken> {
  const remembered = verdicts.get(host.manifest);
  try {
    return await choose(host);
  } catch (err) {
    if (remembered !== undefined && verdicts.get(host.manifest) === remembered) verdicts.delete(host.manifest);
    throw err;
  }
}

async function choose(host: HandshakeHost): Promise<Handshaken> {
  const wanted = wantedRevision(host.manifest);
  if (wanted === MODERN_UPSTREAM_REVISION) {
    host.speak('modern');
    host.transport.setProtocolVersion?.(MODERN_UPSTREAM_REVISION);
    const res = await host.ask('server/discover', undefined, host.connectTimeoutMs);
    if (res.error) {
      const said = maskUrls(clip(withoutMcpPrefix(String(res.error.message)), 200));
      throw new UpstreamError(host.manifest.name, 'refused_initialize', `it refused server/discover (${said}); set protocol: 2025-11-25 if it speaks only the older revision`);
    }
    return discovered(res);
  }
  // The probe is server/discover itself, so a modern upstream costs nothing extra; a legacy one is probed once.
  if (wanted === 'auto' && verdicts.get(host.manifest) !== 'legacy') {
    const modern = await probe(host);
    if (modern) return modern;
  }
  return initialize(host);
}

function discovered(res: RpcResponse): Handshaken {
  const d = readDiscover(res.result as Record<string, unknown> | undefined);
  return { protocolVersion: MODERN_UPSTREAM_REVISION, capabilities: d.capabilities, serverInfo: d.serverInfo, instructions: d.instructions };
}

/** `auto`: server/discover within PROBE_TIMEOUT_MS; the discover result when the upstream answered as a 2026-07-28 server. */
async function probe(host: HandshakeHost): Promise<Handshaken | undefined> {
  host.speak('modern');
  host.transport.setProtocolVersion?.(MODERN_UPSTREAM_REVISION);
  let res: RpcResponse | undefined;
  let failure: UpstreamError | undefined;
  try {
    // Half the connect budget at most, so a silent legacy server still has time to initialize.
    res = await host.ask('server/discover', undefined, Math.min(PROBE_TIMEOUT_MS, host.connectTimeoutMs / 2));
  } catch (err) {
    failure = asUpstreamError(host.manifest.name, err);
  }
  const verdict = probeVerdict(res, failure);
  if (verdict instanceof UpstreamError) {
    host.speak(undefined);
    throw verdict;
  }
  verdicts.set(host.manifest, verdict);
  if (verdict === 'modern') return discovered(res!);
  host.log.debug({ said: res?.error?.message ?? failure?.detail }, 'upstream did not answer server/discover as a 2026-07-28 server; initializing');
  host.speak(undefined);
  host.transport.setProtocolVersion?.(undefined);
  return undefined;
}

async function initialize(host: HandshakeHost): Promise<Handshaken> {
  host.speak('legacy');
  const res = await host.ask('initialize', host.init as unknown as Params, host.connectTimeoutMs);
  if (res.error) {
    const said = maskUrls(clip(withoutMcpPrefix(String(res.error.message)), 200));
    throw new UpstreamError(host.manifest.name, 'refused_initialize', `it refused initialize (${said})`);
  }
  const r = res.result as { protocolVersion?: string; capabilities?: Record<string, unknown>; serverInfo?: Record<string, unknown>; instructions?: string };
  if (r.protocolVersion) host.transport.setProtocolVersion?.(r.protocolVersion);
  await host.transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return { protocolVersion: r.protocolVersion, capabilities: r.capabilities ?? {}, serverInfo: r.serverInfo ?? {}, instructions: r.instructions };
}

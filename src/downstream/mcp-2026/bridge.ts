/**
 * Bridging a legacy upstream's sampling, elicitation and roots requests to a 2026-07-28 client: the call's request
 * is held (bounded in time), the client gets an `input_required` result with an authenticated `requestState`, and
 * its retry with `inputResponses` answers the held request, so the same upstream call completes. Behind a balancer
 * the state names the replica holding the call and is sealed with a key all replicas share: a retry landing on
 * another replica is verified there and forwarded to the holder (decision 0041).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ReplyChannel } from '../../gateway/channel.js';
import type { ClientSession, View } from '../../gateway/client-session.js';
import type { Caller } from '../../gateway/types.js';
import { errorResponse, RpcErrorCode, type RpcId, type RpcRequest, type RpcResponse } from '../../util/jsonrpc.js';
import { processStateKeys, type StateKeys } from './state-keys.js';

/** State naming a held legacy upstream request starts so. */
export const STATE_PREFIX = 'sy1.';
/** State wrapping a modern upstream's own requestState starts so; the client gets no other kind of state. */
export const WRAP_PREFIX = 'sy2.';
/** How long a held upstream request waits for the client's retry. */
export const HOLD_MS = 5 * 60_000;

/** The client capability each bridged method needs, as the revision names it. */
export const REQUIRED_CAPABILITY: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** Where a parked call's next answer goes: the retry's response stream. */
export interface Resumable {
  /** Whether the current response stream already got its answer. */
  readonly answered: boolean;
  retarget(requestId: RpcId, send: (status: number, body: RpcResponse) => void, inner: ReplyChannel): void;
}

interface Held {
  reply: Resumable;
  session: ClientSession;
  upstreamRequestId: RpcId;
  key: string;
  request: { method: string; params?: Record<string, unknown> };
  binding: string;
  timer: NodeJS.Timeout;
}

export type Unwrapped = { ok: true; state: string } | { ok: false; status: number; body: RpcResponse };

/**
 * `owner`: the state is genuine and bound to this caller, but another replica holds the call; the retry may be
 * forwarded there, and `body` is the answer when it cannot be.
 */
export type Resumed = { ok: true; resumed?: { reply: Resumable; session: ClientSession } } | { ok: false; status: number; body: RpcResponse; owner?: string };

export interface BridgeOptions {
  /** The keys state is sealed with (default: a key of this process alone). */
  keys?: StateKeys;
  /** This replica's id, named in the state of the calls it holds (default 'local': one process). */
  replica?: string;
}

const REFUSED = (retryId: RpcId, why: string) => errorResponse(retryId, RpcErrorCode.InvalidParams, `Invalid requestState: ${why}. Start the request again without requestState.`, { reason: 'invalid_request_state' });
const NOT_OURS = 'it was not issued by this gateway';
const NOT_YOURS = 'it was altered, or belongs to another caller or request';

/** What ties a state to one caller and one request: another caller, view or target cannot use it. */
function bindingOf(caller: Caller, view: View, method: string, name: unknown): string {
  return JSON.stringify([caller.principal, view.single ?? '', method, typeof name === 'string' ? name : '']);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class InputBridge {
  private readonly keys: StateKeys;
  /** This replica's id as state names it. */
  readonly replica: string;
  private readonly held = new Map<string, Held>();

  constructor(private readonly holdMs = HOLD_MS, opts: BridgeOptions = {}) {
    this.keys = opts.keys ?? processStateKeys();
    this.replica = opts.replica ?? 'local';
  }

  get size(): number {
    return this.held.size;
  }

  private static sign(key: Buffer, replica: string, id: string, binding: string): string {
    return createHmac('sha256', key).update(`hold\u0000${replica}\u0000${id}\u0000${binding}`).digest('base64url');
  }

  private static seal(key: Buffer, issued: string, state: string, binding: string): string {
    return createHmac('sha256', key).update(`wrap\u0000${issued}\u0000${state}\u0000${binding}`).digest('base64url');
  }

  /** A modern upstream's own requestState, inside state bound to this caller and request (the upstream's bytes untouched). */
  wrap(state: string, caller: Caller, view: View, method: string, name: unknown): string {
    const issued = Date.now().toString(36);
    const { kid, key } = this.keys.current();
    return `${WRAP_PREFIX}${kid}.${issued}.${Buffer.from(state, 'utf8').toString('base64url')}.${InputBridge.seal(key, issued, state, bindingOf(caller, view, method, name))}`;
  }

  /** The upstream's state back out of a retry's requestState, or why it is refused (altered, foreign, expired, not ours). */
  unwrap(given: unknown, caller: Caller, view: View, method: string, name: unknown, retryId: RpcId): Unwrapped {
    const refuse = (why: string): Unwrapped => ({ ok: false, status: 400, body: REFUSED(retryId, why) });
    if (typeof given !== 'string' || !given.startsWith(WRAP_PREFIX)) return refuse(NOT_OURS);
    const [kid, issued, body, mac, extra] = given.slice(WRAP_PREFIX.length).split('.');
    const key = kid ? this.keys.find(kid) : undefined;
    if (!issued || body === undefined || !mac || extra !== undefined || !key) return refuse(NOT_OURS);
    const state = Buffer.from(body, 'base64url').toString('utf8');
    if (!same(InputBridge.seal(key, issued, state, bindingOf(caller, view, method, name)), mac)) return refuse(NOT_YOURS);
    if (Date.now() - parseInt(issued, 36) > this.holdMs) return refuse(`it is older than ${Math.round(this.holdMs / 1000)} s`);
    return { ok: true, state };
  }

  /** Hold the upstream's request; returns the input_required result the client gets for it. */
  hold(reply: Resumable, session: ClientSession, upstream: RpcRequest, caller: Caller, view: View, method: string, name: unknown): Record<string, unknown> {
    const id = randomUUID();
    const binding = bindingOf(caller, view, method, name);
    const key = `${upstream.method.replace(/\W+/g, '_')}_${id.slice(0, 8)}`;
    const timer = setTimeout(() => {
      if (!this.held.delete(id)) return;
      session.answer(errorResponse(upstream.id, -32001, `The client did not answer ${upstream.method} within ${this.holdMs} ms`));
    }, this.holdMs);
    timer.unref();
    const request = { method: upstream.method, ...(upstream.params ? { params: upstream.params } : {}) };
    this.held.set(id, { reply, session, upstreamRequestId: upstream.id, key, request, binding, timer });
    const sealing = this.keys.current();
    const requestState = `${STATE_PREFIX}${sealing.kid}.${this.replica}.${id}.${InputBridge.sign(sealing.key, this.replica, id, binding)}`;
    return { resultType: 'input_required', inputRequests: { [key]: request }, requestState };
  }

  /**
   * A retry carrying gateway-minted state: verified against the caller and request, used once. With the response
   * it answers the held upstream request and the retry's stream takes the call's next answer; without, the client
   * is asked again. State another replica minted for a call it holds comes back with `owner` set.
   */
  resume(state: string, params: Record<string, unknown>, caller: Caller, view: View, method: string, retryId: RpcId, reply: { send: (status: number, body: RpcResponse) => void; inner: ReplyChannel; asked: (result: Record<string, unknown>) => void }): Resumed {
    const refuse = (why: string): Resumed => ({ ok: false, status: 400, body: REFUSED(retryId, why) });
    const [kid, replica, id, mac, extra] = state.slice(STATE_PREFIX.length).split('.');
    const key = kid ? this.keys.find(kid) : undefined;
    if (!replica || !id || !mac || extra !== undefined || !key) return refuse(NOT_OURS);
    const binding = bindingOf(caller, view, method, method === 'resources/read' ? params.uri : params.name);
    if (!same(InputBridge.sign(key, replica, id, binding), mac)) return refuse(NOT_YOURS);
    // Genuine and this caller's, but the call waits on another replica: only it can answer the held request.
    if (replica !== this.replica) return { ok: false, status: 400, body: REFUSED(retryId, 'the gateway replica holding this call is gone (or could not be reached), so the call ended there'), owner: replica };
    const h = this.held.get(id);
    if (!h || h.binding !== binding) return refuse('it was already used or has expired');
    const responses = params.inputResponses as Record<string, unknown> | undefined;
    const answer = responses?.[h.key];
    if (typeof answer !== 'object' || answer === null) {
      // Nothing for the held request: ask again, with the same state (it stays valid until answered).
      reply.asked({ resultType: 'input_required', inputRequests: { [h.key]: h.request }, requestState: state });
      return { ok: true };
    }
    this.held.delete(id);
    clearTimeout(h.timer);
    h.reply.retarget(retryId, reply.send, reply.inner);
    h.session.answer({ jsonrpc: '2.0', id: h.upstreamRequestId, result: answer });
    return { ok: true, resumed: { reply: h.reply, session: h.session } };
  }

  /** The call behind `reply` ended: its held requests can no longer be answered, and their state is void. */
  forget(reply: Resumable): void {
    for (const [id, h] of this.held) {
      if (h.reply !== reply) continue;
      clearTimeout(h.timer);
      this.held.delete(id);
    }
  }

  close(): void {
    for (const h of this.held.values()) {
      clearTimeout(h.timer);
      h.session.answer(errorResponse(h.upstreamRequestId, -32001, 'the gateway is stopping'));
    }
    this.held.clear();
  }
}

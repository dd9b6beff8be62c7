// The keys requestState is sealed with: a process alone keeps its own; replicas derive theirs from the shared signing
// keys, so state minted on one verifies on another, across a rotation, and no longer once its key is removed.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InputBridge } from '../../src/downstream/mcp-2026/bridge.js';
import { processStateKeys, sharedStateKeys } from '../../src/downstream/mcp-2026/state-keys.js';
import type { StoredSigningKey } from '../../src/identity/key-store.js';
import type { Caller } from '../../src/gateway/types.js';

const caller = (agentId: string): Caller => ({ agentId, principal: `p-${agentId}`, chain: [agentId], via: 'apikey' });
const signingKey = (kid: string, retiredAt?: number): StoredSigningKey => ({
  kid,
  alg: 'ES256',
  createdAt: Date.now(),
  ...(retiredAt ? { retiredAt } : {}),
  privateJwk: { kty: 'EC', crv: 'P-256', d: randomBytes(32).toString('base64url') },
  publicJwk: { kty: 'EC', crv: 'P-256' },
});

describe('requestState keys', () => {
  it('two replicas reading the same signing keys seal and open each other’s state; a process key opens only its own', () => {
    let keys: StoredSigningKey[] = [signingKey('20261201-aaaa')];
    const store = { list: () => keys };
    const a = new InputBridge(60_000, { keys: sharedStateKeys(store), replica: 'ra' });
    const b = new InputBridge(60_000, { keys: sharedStateKeys(store), replica: 'rb' });
    const wrapped = a.wrap('upstream-state', caller('x'), {}, 'tools/call', 'srv__t');
    expect(wrapped.startsWith('sy2.20261201-aaaa.')).toBe(true);
    expect(b.unwrap(wrapped, caller('x'), {}, 'tools/call', 'srv__t', 1)).toEqual({ ok: true, state: 'upstream-state' });
    expect(b.unwrap(wrapped, caller('y'), {}, 'tools/call', 'srv__t', 1).ok).toBe(false);
    const alone = new InputBridge(60_000, { keys: processStateKeys() });
    const unwrapped = alone.unwrap(wrapped, caller('x'), {}, 'tools/call', 'srv__t', 1);
    expect(unwrapped.ok ? '' : unwrapped.body.error?.message).toContain('not issued by this gateway');

    // A rotation: new state names the new key, the old state still opens while the retired key is kept…
    keys = [signingKey('20261201-bbbb'), { ...keys[0]!, retiredAt: Date.now() }];
    const fresh = a.wrap('s2', caller('x'), {}, 'tools/call', 'srv__t');
    expect(fresh.startsWith('sy2.20261201-bbbb.')).toBe(true);
    expect(b.unwrap(wrapped, caller('x'), {}, 'tools/call', 'srv__t', 1).ok).toBe(true);
    expect(b.unwrap(fresh, caller('x'), {}, 'tools/call', 'srv__t', 1).ok).toBe(true);
    // …and not once it is removed.
    keys = [keys[0]!];
    expect(b.unwrap(wrapped, caller('x'), {}, 'tools/call', 'srv__t', 1).ok).toBe(false);
  });

  it('held-call state opened on another replica names its holder, only for the caller it was minted for', () => {
    const only = [signingKey('k1')];
    const store = { list: () => only };
    const a = new InputBridge(60_000, { keys: sharedStateKeys(store), replica: 'ra' });
    const b = new InputBridge(60_000, { keys: sharedStateKeys(store), replica: 'rb' });
    const session = { answer: () => true } as unknown as import('../../src/gateway/client-session.js').ClientSession;
    const result = a.hold({ answered: true, retarget: () => {} }, session, { jsonrpc: '2.0', id: 'u1', method: 'elicitation/create', params: {} }, caller('x'), {}, 'tools/call', 'srv__t');
    const state = String(result.requestState);
    const sink = { send: () => {}, inner: { related() {}, final() {}, gone: false }, asked: () => {} };
    const elsewhere = b.resume(state, { name: 'srv__t' }, caller('x'), {}, 'tools/call', 2, sink);
    expect(elsewhere.ok ? undefined : elsewhere.owner).toBe('ra');
    const stranger = b.resume(state, { name: 'srv__t' }, caller('y'), {}, 'tools/call', 2, sink);
    expect(stranger.ok ? 'ok' : [stranger.owner, stranger.body.error?.message]).toEqual([undefined, 'Invalid requestState: it was altered, or belongs to another caller or request. Start the request again without requestState.']);
    a.close();
  });

  it('an empty key store is a clear error, not state sealed with nothing', () => {
    expect(() => sharedStateKeys({ list: () => [] }).current()).toThrow(/no shared signing key/);
  });
});

/**
 * The keys that authenticate the requestState the gateway mints (decision 0030). One process alone keeps a random
 * key of its own; replicas sharing PostgreSQL derive theirs from the shared signing keys, so state minted on one
 * replica verifies on every other and survives a rotation while the old key is kept (each state names its key).
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import type { KeyStore } from '../../identity/key-store.js';

export interface StateKeys {
  /** The key new state is sealed with, and its name (no dots). */
  current(): { kid: string; key: Buffer };
  /** The key a state names, or undefined when it is not (or no longer) one of ours. */
  find(kid: string): Buffer | undefined;
}

/** A key of this process alone: state it seals verifies nowhere else. */
export function processStateKeys(): StateKeys {
  const key = randomBytes(32);
  return { current: () => ({ kid: 'p', key }), find: (kid) => (kid === 'p' ? key : undefined) };
}

const INFO = 'switchyard mcp requestState v1';

/** Keys derived (HKDF-SHA256) from the shared signing keys' private parts: the same on every replica, never the signing key itself. */
export function sharedStateKeys(store: Pick<KeyStore, 'list'>): StateKeys {
  const derived = new Map<string, Buffer>();
  const derive = (kid: string): Buffer | undefined => {
    const hit = derived.get(kid);
    if (hit) return hit;
    const k = store.list().find((s) => s.kid === kid);
    const secret = typeof k?.privateJwk.d === 'string' ? k.privateJwk.d : undefined;
    if (!secret) return undefined;
    const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'base64url'), Buffer.from(kid), INFO, 32));
    derived.set(kid, key);
    return key;
  };
  return {
    current() {
      const k = store.list().find((s) => s.retiredAt === undefined) ?? store.list()[0];
      const key = k && !k.kid.includes('.') ? derive(k.kid) : undefined;
      if (!k || !key) throw new Error('no shared signing key to seal requestState with (the key store is empty)');
      return { kid: k.kid, key };
    },
    find(kid) {
      // A removed key no longer verifies: forget what was derived from it.
      if (!store.list().some((s) => s.kid === kid)) {
        derived.delete(kid);
        return undefined;
      }
      return derive(kid);
    },
  };
}

/** Everything delegation needs at run time, opened once per gateway: keys, minted-token store, limits, policies, guard. */
import type { Db } from '../audit/index.js';
import type { DelegationTokenStore, SliceStore } from '../stores/delegation.js';
import { SqliteDelegationTokens, SqliteSlices } from '../stores/sqlite/delegation.js';
import { mapAwaitable, type Awaitable } from '../stores/types.js';
import type { LiveChildrenStore } from '../stores/live-children.js';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import { createDelegationGuard } from '../gateway/guards/delegation.js';
import type { Caller, Guard } from '../gateway/types.js';
import { DelegationLimits } from '../limits/delegation.js';
import { DelegatedPolicyResolver } from './delegation-policy.js';
import type { JwtVerifier } from './jwt.js';
import { GatewayKeys, SIGNING_ALGORITHM, type KeyStore } from './keys.js';
import type { LiveAgents } from './policy.js';

export interface DelegationRuntimeOptions {
  config: Pick<GatewayConfig, 'dataDir' | 'delegation'>;
  /** Minted tokens and revocations, and the slices budgeted tokens spend (from openStores). */
  stores?: { tokens: DelegationTokenStore; slices: SliceStore; keys?: KeyStore; liveChildren?: LiveChildrenStore };
  /** Told when the live children could not be counted again at start (the shared store did not answer). */
  log?: Pick<Logger, 'warn'>;
  /** Without `stores`: the audit database (`core.audit.db`), the tokens kept beside the workflows. */
  db?: Db;
  agents: LiveAgents;
  /** Whether agent `local` without a manifest may use everything (Authenticator.localMode). */
  localMode: () => boolean;
  now?: () => number;
}

export interface DelegationRuntime {
  keys: GatewayKeys;
  store: DelegationTokenStore;
  /** Tool calls spent per budgeted token (persisted: a restart gives no slice a fresh count). */
  slices: SliceStore;
  limits: DelegationLimits;
  /** Use in place of the plain PolicyResolver: policy and approval guards, and `access` for the Gateway. */
  policies: DelegatedPolicyResolver;
  /** Sets parentStep from the token's `pstep` and enforces `budget` slices; put it after the limits guard. */
  guard: Guard;
  isRevoked(jti: string): boolean;
  /** Load a token minted on another replica into the local copy before its first call here (shared stores). */
  ensureToken(jti: string): void | Promise<unknown>;
  /** Revoke a token and everything minted from it; undefined when the gateway never saw that jti. */
  revoke(jti: string): Awaitable<{ jti: string; revoked: string[] } | undefined>;
  /** Accept the gateway's own tokens on every route, once its public URL (the issuer) is known. */
  trust(verifier: JwtVerifier, issuer: string): void;
  maxTokenSeconds(): number;
}

export async function openDelegation(opts: DelegationRuntimeOptions): Promise<DelegationRuntime> {
  const maxTokenSeconds = () => opts.config.delegation.maxTokenSeconds;
  const keyOpts = { maxTokenSeconds: maxTokenSeconds(), now: opts.now };
  // Replicas sign with the keys in the shared store; one gateway keeps them in its data dir.
  const keyStore = opts.stores?.keys;
  const keys = keyStore ? await GatewayKeys.openStore(keyStore, keyOpts) : await GatewayKeys.open(opts.config.dataDir, keyOpts);
  const { tokens: store, slices } = opts.stores ?? embeddedStores(opts);
  const limits = new DelegationLimits({ children: opts.stores?.liveChildren, now: opts.now });
  // maxChildren counts live children across restarts too (a shared count may have lost them with its Redis).
  const live = await store.liveTokens();
  await Promise.all(live.map((t) => limits.addChild(t.parentNode, t.jti, t.expiresAt))).catch((err: Error) => {
    opts.log?.warn({ err: err.message, tokens: live.length }, `the ${live.length} live delegated tokens could not be counted again for delegation.maxChildren; until they expire their parents may mint that many more children`);
  });
  const policies = new DelegatedPolicyResolver(opts.agents, { localMode: opts.localMode, tokenOf: (jti) => store.get(jti) });
  return {
    keys,
    store,
    slices,
    limits,
    policies,
    guard: createDelegationGuard({ tokenOf: (jti) => store.get(jti), slices }),
    isRevoked: (jti) => store.isRevoked(jti),
    ensureToken: (jti) => (store.load && !store.get(jti) ? store.load(jti) : undefined),
    // Stays synchronous over synchronous stores (one gateway on SQLite and memory), like the stores themselves.
    revoke(jti) {
      return mapAwaitable(store.knows(jti), (known) => {
        if (!known && !store.isRevoked(jti)) return undefined;
        const own = store.get(jti);
        return mapAwaitable(store.revoke(jti), ({ revoked, descendants }) => {
          const freed = (own ? [own, ...descendants] : descendants).map((t) => limits.removeChild(t.parentNode, t.jti));
          const pending = freed.filter((f): f is Promise<void> => f instanceof Promise);
          if (pending.length === 0) return { jti, revoked };
          // Revoked children no longer count against their parent's maxChildren, on any replica. The revocation
          // stands either way; a slot not given back lapses at its token's expiry.
          return Promise.all(pending).then(
            () => ({ jti, revoked }),
            (err: Error) => {
              opts.log?.warn({ err: err.message, jti }, `token ${jti} is revoked, but its parent's delegation.maxChildren slot is freed only when the token expires`);
              return { jti, revoked };
            },
          );
        });
      });
    },
    trust(verifier, issuer) {
      verifier.addLocalIssuer(issuer, () => keys.publicJwks(), { audience: issuer, algorithms: [SIGNING_ALGORITHM] });
    },
    maxTokenSeconds,
  };
}

function embeddedStores(opts: DelegationRuntimeOptions): { tokens: DelegationTokenStore; slices: SliceStore } {
  if (!opts.db) throw new Error('openDelegation needs its stores or the audit database');
  return { tokens: new SqliteDelegationTokens(opts.db, { now: opts.now }), slices: new SqliteSlices(opts.db, { now: opts.now }) };
}

/** The workflow of the caller's most recently active session: a root agent delegating from inside its MCP session. */
export function latestSessionWorkflow(sessions: Iterable<{ caller: Caller; workflowId: string; lastSeen: number }>, caller: Caller): string | undefined {
  let best: { workflowId: string; lastSeen: number } | undefined;
  for (const cs of sessions) {
    const c = cs.caller;
    if (c.principal !== caller.principal || c.jti !== caller.jti) continue;
    if (!best || cs.lastSeen > best.lastSeen) best = cs;
  }
  return best?.workflowId;
}

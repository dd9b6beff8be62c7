/**
 * Which stores a gateway runs on, chosen once at start from gateway.yaml (SPEC §12, docs/decisions/0034-stores-chosen-at-start-and-fail-mode.md): the embedded
 * default (memory and SQLite in dataDir), `state.redis` for the fast shared state and `store.postgres` for the durable
 * one. Every room takes its store from here; none opens its own.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import { openAudit, type AuditRuntime } from '../audit/index.js';
import { LIMIT_DIMENSIONS } from '../limits/counters.js';
import type { ApprovalsStore } from './approvals.js';
import type { ControlBus } from './bus.js';
import type { CounterStore } from './counters.js';
import type { DelegationTokenStore, SliceStore } from './delegation.js';
import type { LiveChildrenStore } from './live-children.js';
import type { LoopHistoryStore } from './loop-history.js';
import type { SharedSessionDirectory } from './sessions.js';
import type { StreamEventStore } from './stream-events.js';
import type { TaskOwnerStore } from './task-owners.js';
import type { KeyStore } from '../identity/key-store.js';
import type { ConsoleSessionStore } from './console-sessions.js';
import { MemoryControlBus } from './memory/bus.js';
import { MemoryLiveChildren } from './memory/live-children.js';
import { MemoryLoopHistory } from './memory/loop-history.js';
import { MemoryStreamEvents } from './memory/stream-events.js';
import { SqliteApprovals } from './sqlite/approvals.js';
import { SqliteCounterStore } from './sqlite/counters.js';
import { SqliteDelegationTokens, SqliteSlices } from './sqlite/delegation.js';
import { MemorySlices } from './memory/delegation.js';
import { SqliteTaskOwners } from './sqlite/task-owners.js';
export { redactUrl } from './address.js';

/** A shared server a replica depends on, as /readyz and the fail-mode guard see it. */
export interface SharedHealth {
  name: 'redis' | 'postgres';
  /** The server's address without credentials, for log lines and refusals. */
  target: string;
  ok: boolean;
  error?: string;
}

/** Something shared that can say whether it answers now. */
export interface HealthSource {
  health(): { ok: boolean; error?: string };
}

export interface GatewayStores {
  /** This process among the replicas (the control bus's id). */
  replicaId: string;
  /** Where fast state and durable state live, for the start-up log line and /readyz. */
  backends: { state: 'embedded' | 'redis'; store: 'sqlite' | 'postgres' };
  bus: ControlBus;
  audit: AuditRuntime;
  counters: CounterStore;
  slices: SliceStore;
  tokens: DelegationTokenStore;
  /** Live sub-agents per parent (delegation.maxChildren): shared in Redis, else this process's memory. */
  liveChildren: LiveChildrenStore;
  loopHistory: LoopHistoryStore;
  /** Which replica holds each MCP session, on the Redis client of the other stores; absent without state.redis. */
  sessions?: SharedSessionDirectory;
  approvals: ApprovalsStore;
  taskOwners: TaskOwnerStore;
  streamEvents: StreamEventStore;
  /** The signing keys of delegated tokens when they are shared; absent: the files in dataDir/keys. */
  keys?: KeyStore;
  /** Console sign-in sessions when they are shared (store.postgres); absent: each process's memory. */
  consoleSessions?: ConsoleSessionStore;
  /** Every shared server and whether it answers now; empty for the embedded stores. */
  health(): SharedHealth[];
  /** Close everything; resolves with how many audit records could not be written. */
  close(): Promise<number>;
}

export interface OpenStoresOptions {
  config: GatewayConfig;
  log: Logger;
  /** Counter write-behind failures (the embedded counters keep counting in memory). */
  onCounterError?: (err: unknown) => void;
}


/**
 * Open the stores gateway.yaml asks for: `state.redis` puts the fast state (counters, slices, live children, loop
 * histories, the control bus, the session directory) in Redis, `store.postgres` the durable state (workflows, tokens, keys, approvals, owners, the trail)
 * in PostgreSQL; what is not configured stays embedded in dataDir. Throws with what to do when one cannot be opened.
 */
export async function openStores(opts: OpenStoresOptions): Promise<GatewayStores> {
  const { config, log } = opts;
  // Loaded only when asked for: a gateway on its data dir never loads the Redis or PostgreSQL clients.
  const shared = config.state.redis !== undefined || config.store.postgres !== undefined ? await import('./shared.js') : undefined;
  const closers = shared ? new shared.Closers(log) : undefined;
  try {
    const redis = shared && closers && config.state.redis !== undefined ? await shared.openRedisState({ ...opts, url: config.state.redis, closers }) : undefined;
    const bus = redis?.bus ?? new MemoryControlBus();
    const pg = shared && closers && config.store.postgres !== undefined ? await shared.openPostgresStore({ ...opts, url: config.store.postgres, bus, closers }) : undefined;
    const embedded = pg ? undefined : openAudit({ dataDir: config.dataDir, audit: config.audit, logger: log });
    const audit = pg?.audit ?? embedded!;
    const counters =
      redis?.counters ??
      new SqliteCounterStore({
        dimensions: LIMIT_DIMENSIONS,
        file: join(config.dataDir, 'limits.db'),
        onError: opts.onCounterError ?? ((err) => log.error({ err: String(err) }, 'limit counters could not be saved; counting goes on in memory')),
      });
    if (redis && !pg) log.warn({ dataDir: config.dataDir }, `state.redis without store.postgres: workflows, delegated tokens, approvals and the audit trail stay in ${config.dataDir} of each replica; set store.postgres to share them`);
    if (pg && !redis) log.warn({ dataDir: config.dataDir }, `store.postgres without state.redis: budgets, windows and loop histories are counted per replica in ${config.dataDir}; set state.redis to share them`);
    const health = (): SharedHealth[] => [...(redis ? [redis.health()] : []), ...(pg ? [pg.health()] : [])];
    return {
      replicaId: bus.replicaId,
      backends: { state: redis ? 'redis' : 'embedded', store: pg ? 'postgres' : 'sqlite' },
      bus,
      audit,
      counters,
      slices: redis?.slices ?? (embedded ? new SqliteSlices(embedded.db) : new MemorySlices()),
      tokens: pg?.tokens ?? new SqliteDelegationTokens(embedded!.db),
      liveChildren: redis?.liveChildren ?? new MemoryLiveChildren(),
      sessions: redis?.sessions,
      keys: pg?.keys,
      consoleSessions: pg?.consoleSessions,
      loopHistory: redis?.loopHistory ?? new MemoryLoopHistory(),
      approvals: pg?.approvals ?? new SqliteApprovals(embedded!.db),
      taskOwners: pg?.taskOwners ?? new SqliteTaskOwners(embedded!.db),
      // A session's GET stream lives on the replica that holds the session; its replay buffer lives there too.
      streamEvents: new MemoryStreamEvents(),
      health,
      close: async () => {
        const unwritten = await audit.close();
        if (!redis) await counters.close();
        await closers?.run();
        if (!redis) await bus.close();
        return unwritten;
      },
    };
  } catch (err) {
    await closers?.run();
    throw err;
  }
}

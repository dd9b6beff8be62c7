/**
 * Which stores a gateway runs on, chosen once at start from gateway.yaml (SPEC §12, docs/decisions/0094): the embedded
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
import type { LoopHistoryStore } from './loop-history.js';
import type { StreamEventStore } from './stream-events.js';
import type { TaskOwnerStore } from './task-owners.js';
import type { KeyStore } from '../identity/key-store.js';
import { MemoryControlBus } from './memory/bus.js';
import { MemoryLoopHistory } from './memory/loop-history.js';
import { MemoryStreamEvents } from './memory/stream-events.js';
import { SqliteApprovals } from './sqlite/approvals.js';
import { SqliteCounterStore } from './sqlite/counters.js';
import { SqliteDelegationTokens, SqliteSlices } from './sqlite/delegation.js';
import { SqliteTaskOwners } from './sqlite/task-owners.js';

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
  loopHistory: LoopHistoryStore;
  approvals: ApprovalsStore;
  taskOwners: TaskOwnerStore;
  streamEvents: StreamEventStore;
  /** The signing keys of delegated tokens when they are shared; absent: the files in dataDir/keys. */
  keys?: KeyStore;
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

export class StoreConfigError extends Error {}

/** `redis://user:secret@host:6379/0` → `redis://host:6379/0`: addresses in logs and refusals never carry a password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable address)';
  }
}

/** Open the stores gateway.yaml asks for; throws StoreConfigError with what to change when they cannot be opened. */
export async function openStores(opts: OpenStoresOptions): Promise<GatewayStores> {
  const { config, log } = opts;
  if (config.state.redis !== undefined || config.store.postgres !== undefined) return openShared(opts);
  const audit = openAudit({ dataDir: config.dataDir, audit: config.audit, logger: log });
  const bus = new MemoryControlBus();
  const counters = new SqliteCounterStore({
    dimensions: LIMIT_DIMENSIONS,
    file: join(config.dataDir, 'limits.db'),
    onError: opts.onCounterError ?? ((err) => log.error({ err: String(err) }, 'limit counters could not be saved; counting goes on in memory')),
  });
  return {
    replicaId: bus.replicaId,
    backends: { state: 'embedded', store: 'sqlite' },
    bus,
    audit,
    counters,
    slices: new SqliteSlices(audit.db),
    tokens: new SqliteDelegationTokens(audit.db),
    loopHistory: new MemoryLoopHistory(),
    approvals: new SqliteApprovals(audit.db),
    taskOwners: new SqliteTaskOwners(audit.db),
    streamEvents: new MemoryStreamEvents(),
    health: () => [],
    close: async () => {
      await counters.close();
      bus.close();
      return audit.close();
    },
  };
}

/**
 * Replicas: Redis for the fast state, PostgreSQL for the durable one. Both are needed together: a replica that shared
 * one and kept the other in its own dataDir would split budgets or trails between replicas without saying so.
 */
async function openShared(opts: OpenStoresOptions): Promise<GatewayStores> {
  const { config } = opts;
  if (config.state.redis === undefined || config.store.postgres === undefined) {
    const missing = config.state.redis === undefined ? 'state.redis' : 'store.postgres';
    throw new StoreConfigError(`${missing} is not set: replicas share state in Redis and PostgreSQL together; set both state.redis and store.postgres in gateway.yaml, or neither for one gateway on its own data directory`);
  }
  const { openSharedStores } = await import('./shared.js');
  return openSharedStores({ ...opts, redisUrl: config.state.redis, postgresUrl: config.store.postgres });
}

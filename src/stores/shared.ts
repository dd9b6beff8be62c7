/**
 * The stores of a replica (SPEC §12): fast state in Redis (counters and windows, slices, loop history, the control
 * bus) and durable state in PostgreSQL (workflows, delegation tokens, the audit trail and its console views). One
 * Redis client and one PostgreSQL pool per process, shared by every store.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import { defaultAuditKeyPath, loadAuditKey } from '../audit/head.js';
import type { AuditRuntime } from '../audit/index.js';
import { LIMIT_DIMENSIONS } from '../limits/counters.js';
import type { StepSink } from '../gateway/types.js';
import type { GatewayStores, OpenStoresOptions, SharedHealth } from './open.js';
import { PgAuditConsole } from './postgres/audit/console.js';
import { PgAuditLog } from './postgres/audit/store.js';
import { PgDelegationTokens } from './postgres/delegation.js';
import { openPostgres, type Postgres } from './postgres/pool.js';
import { PgWorkflows } from './postgres/workflows.js';
import { RedisControlBus } from './redis/bus.js';
import { openRedis, RedisUnavailableError, type RedisClient } from './redis/client.js';
import { failOpenCounters, failOpenLoopHistory, failOpenSlices } from './fail-open.js';
import { RedisCounterStore } from './redis/counters.js';
import { RedisLoopHistoryStore } from './redis/loop-history.js';
import { RedisSliceStore } from './redis/slices.js';
import { MemoryStreamEvents } from './memory/stream-events.js';
import type { WorkflowRegistryView } from './workflow-registry.js';
import type { WorkflowStore } from './workflows.js';

const noopSink: StepSink = { record() {} };

/** How long a replica waits for Redis at start before it serves anyway (refusing, in failMode closed, until it answers). */
const REDIS_START_WAIT_MS = 3_000;

/** Redact the password from a store address (the clients' own helpers answer the same). */
function where(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable address)';
  }
}

/**
 * Workflow control from the PostgreSQL workflow store, views from the shared trail. The model route's lookups
 * answer only what this replica began (they must answer synchronously); a model call naming another replica's
 * workflow by trace id starts its own workflow instead of joining.
 */
function sharedRegistry(control: PgWorkflows, views: PgAuditConsole): WorkflowRegistryView {
  const agents = new Map<string, string>();
  const traces = new Map<string, string>();
  const registry: WorkflowStore = control;
  return {
    begin(init) {
      const id = registry.begin(init);
      agents.set(id, init.caller.agentId);
      const traceId = init.traceparent?.split('-')[1];
      if (traceId) traces.set(traceId, id);
      // Bounded: lookups serve recent workflows, the store keeps them all.
      if (agents.size > 100_000) agents.delete(agents.keys().next().value!);
      if (traces.size > 100_000) traces.delete(traces.keys().next().value!);
      return id;
    },
    nextStep: (id) => registry.nextStep(id),
    state: (id) => registry.state(id),
    setState: (id, state, why) => registry.setState(id, state, why),
    onStateChange: (listener) => registry.onStateChange(listener),
    agentOf: (id) => agents.get(id),
    byTraceId: (traceId) => traces.get(traceId),
    get: (id) => views.get(id),
    list: (filter) => views.list(filter),
    tree: (id, page) => views.tree(id, page),
    countByState: () => views.countByState(),
  };
}

/** Every store but those this build keeps per replica (openStores adds them). */
export type SharedStores = Omit<GatewayStores, 'approvals' | 'taskOwners'>;

export async function openSharedStores(opts: OpenStoresOptions & { redisUrl: string; postgresUrl: string }): Promise<SharedStores> {
  const { config, log } = opts;
  const closers: Array<() => unknown> = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch((err: Error) => log.warn({ err: err.message }, 'a shared store did not close cleanly'));
  };
  try {
    const redis: RedisClient = openRedis({ url: opts.redisUrl, log, failMode: config.state.failMode });
    closers.push(() => redis.close());
    await redis.ready(REDIS_START_WAIT_MS).catch((err: Error) => {
      log.warn({ redis: where(opts.redisUrl), err: err.message }, `Redis at ${where(opts.redisUrl)} did not answer within ${REDIS_START_WAIT_MS / 1000} s of start; serving anyway and reconnecting`);
    });
    const bus = new RedisControlBus({ client: redis });
    closers.push(() => bus.close());
    let pg: Postgres;
    try {
      pg = await openPostgres({ url: opts.postgresUrl, log });
    } catch (err) {
      throw new Error(`PostgreSQL at ${where(opts.postgresUrl)} (store.postgres): ${(err as Error).message}; start it or fix the address, then start the gateway again`);
    }
    closers.push(() => pg.close());
    const control = await PgWorkflows.open({ db: pg, bus, log });
    closers.push(() => control.close());
    const tokens = await PgDelegationTokens.open({ db: pg, bus, log });
    closers.push(() => tokens.close());
    const configuredKey = config.audit.hmacKeyFile;
    const hmacKey = loadAuditKey(configuredKey ?? defaultAuditKeyPath(config.dataDir), { create: configuredKey === undefined });
    const auditLog = await PgAuditLog.open(pg, {
      durability: config.audit.durability,
      flushMs: config.audit.flushMs,
      redact: config.audit.redact.length > 0 ? config.audit.redact : undefined,
      retentionDays: config.audit.retentionDays,
      hmacKey,
      logger: log,
    });
    const views = new PgAuditConsole(pg, async () => void (await auditLog.flush()));
    let auditClosed: Promise<number> | undefined;
    const audit: AuditRuntime = {
      store: auditLog,
      workflows: sharedRegistry(control, views),
      spend: (by, range) => views.spend(by, range),
      sink: config.audit.enabled ? auditLog : noopSink,
      close: () => (auditClosed ??= auditLog.close()),
    };
    // failMode open: a call Redis cannot count is admitted uncounted (the watch logs it), not failed.
    const open = config.state.failMode === 'open';
    const unreachable = (err: unknown) => err instanceof RedisUnavailableError;
    const counters = new RedisCounterStore({ client: redis, dimensions: LIMIT_DIMENSIONS });
    const slices = new RedisSliceStore({ client: redis });
    const loopHistory = new RedisLoopHistoryStore({ client: redis });
    const targets = { redis: where(opts.redisUrl), postgres: where(opts.postgresUrl) };
    const health = (): SharedHealth[] => [
      { name: 'redis', target: targets.redis, ...redis.health() },
      { name: 'postgres', target: targets.postgres, ...pg.health() },
    ];
    return {
      replicaId: bus.replicaId,
      backends: { state: 'redis', store: 'postgres' },
      bus,
      audit,
      counters: open ? failOpenCounters(counters, unreachable) : counters,
      slices: open ? failOpenSlices(slices, unreachable) : slices,
      tokens,
      loopHistory: open ? failOpenLoopHistory(loopHistory, unreachable) : loopHistory,
      // A session's GET stream lives on the replica that holds the session; its replay buffer lives there too.
      streamEvents: new MemoryStreamEvents(),
      health,
      close: async () => {
        const unwritten = await audit.close();
        await closeAll();
        return unwritten;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

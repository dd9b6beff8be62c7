/**
 * The stores of a replica (SPEC §12): fast state in Redis (counters and windows, slices, loop history, the control
 * bus) and durable state in PostgreSQL (workflows, delegation tokens, signing keys, approvals, A2A task owners, the
 * audit trail and its console views). One
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
import { PgApprovals } from './postgres/approvals.js';
import { PgDelegationTokens } from './postgres/delegation.js';
import { PgKeyStore } from './postgres/signing-keys.js';
import { PgTaskOwners } from './postgres/task-owners.js';
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

/** Workflow control and lookups from the PostgreSQL workflow store, the console's views from the shared trail. */
function sharedRegistry(control: PgWorkflows, views: PgAuditConsole): WorkflowRegistryView {
  return {
    begin: (init) => control.begin(init),
    nextStep: (id) => control.nextStep(id),
    state: (id) => control.state(id),
    setState: (id, state, why) => control.setState(id, state, why),
    onStateChange: (listener) => control.onStateChange(listener),
    agentOf: (id) => control.agentOf(id),
    byTraceId: (traceId) => control.byTraceId(traceId),
    get: (id) => views.get(id),
    list: (filter) => views.list(filter),
    tree: (id, page) => views.tree(id, page),
    countByState: () => views.countByState(),
  };
}

export async function openSharedStores(opts: OpenStoresOptions & { redisUrl: string; postgresUrl: string }): Promise<GatewayStores> {
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
    const keys = await PgKeyStore.open({ db: pg, bus, log });
    closers.push(() => keys.close());
    const approvals = await PgApprovals.open({ db: pg });
    const taskOwners = await PgTaskOwners.open({ db: pg });
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
      keys,
      approvals,
      taskOwners,
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

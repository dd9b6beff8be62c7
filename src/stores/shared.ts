/**
 * The stores of a replica (SPEC §12): fast state in Redis (counters and windows, slices, live sub-agents, loop
 * history, the control bus, the session directory) and durable state in PostgreSQL (workflows, delegation tokens, signing keys, approvals, A2A task owners, the
 * audit trail and its console views). One
 * Redis client and one PostgreSQL pool per process, shared by every store.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import { defaultAuditKeyPath, loadAuditKey } from '../audit/head.js';
import type { AuditRuntime } from '../audit/index.js';
import { LIMIT_DIMENSIONS } from '../limits/counters.js';
import type { StepSink } from '../gateway/types.js';
import type { OpenStoresOptions, SharedHealth } from './open.js';
import type { ControlBus } from './bus.js';
import { PgAuditConsole } from './postgres/audit/console.js';
import { PgAuditLog } from './postgres/audit/store.js';
import { PgApprovals } from './postgres/approvals.js';
import { PgDelegationTokens } from './postgres/delegation.js';
import { PgKeyStore } from './postgres/signing-keys.js';
import { PgTaskOwners } from './postgres/task-owners.js';
import { PgConsoleSessions } from './postgres/console-sessions.js';
import { openPostgres, type Postgres } from './postgres/pool.js';
import { PgWorkflows } from './postgres/workflows.js';
import { RedisControlBus } from './redis/bus.js';
import { openRedis, RedisUnavailableError, type RedisClient } from './redis/client.js';
import { failOpenCounters, failOpenLiveChildren, failOpenLoopHistory, failOpenSlices } from './fail-open.js';
import { RedisCounterStore } from './redis/counters.js';
import { RedisLiveChildren } from './redis/live-children.js';
import { RedisLoopHistoryStore } from './redis/loop-history.js';
import { RedisSessionDirectory } from './redis/session-directory.js';
import { RedisSliceStore } from './redis/slices.js';
import type { WorkflowRegistryView } from './workflow-registry.js';
import { redactUrl } from './address.js';

const noopSink: StepSink = { record() {} };

/** How long a replica waits for Redis at start before it serves anyway (refusing, in failMode closed, until it answers). */
const REDIS_START_WAIT_MS = 3_000;


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

/** Closers run newest first; a failing one is logged and the rest still run. */
export class Closers {
  private readonly list: Array<() => unknown> = [];
  constructor(private readonly log: Pick<Logger, 'warn'>) {}
  add(c: () => unknown): void {
    this.list.push(c);
  }
  async run(): Promise<void> {
    for (const c of this.list.splice(0).reverse()) await Promise.resolve(c()).catch((err: Error) => this.log.warn({ err: err.message }, 'a shared store did not close cleanly'));
  }
}

/** The fast state on Redis: counters, slices, live children, loop histories, the control bus and the session directory, on one client. */
export async function openRedisState(opts: OpenStoresOptions & { url: string; closers: Closers }) {
  const { config, log, url } = opts;
  const redis: RedisClient = openRedis({ url, log, failMode: config.state.failMode });
  opts.closers.add(() => redis.close());
  await redis.ready(REDIS_START_WAIT_MS).catch((err: Error) => {
    log.warn({ redis: redactUrl(url), err: err.message }, `Redis at ${redactUrl(url)} did not answer within ${REDIS_START_WAIT_MS / 1000} s of start; serving anyway and reconnecting`);
  });
  const bus = new RedisControlBus({ client: redis });
  opts.closers.add(() => bus.close());
  // failMode open: a call Redis cannot count is admitted uncounted (the watch logs it), not failed.
  const open = config.state.failMode === 'open';
  const unreachable = (err: unknown) => err instanceof RedisUnavailableError;
  const counters = new RedisCounterStore({ client: redis, dimensions: LIMIT_DIMENSIONS });
  const slices = new RedisSliceStore({ client: redis });
  const loopHistory = new RedisLoopHistoryStore({ client: redis });
  const liveChildren = new RedisLiveChildren({ client: redis });
  const sessions = new RedisSessionDirectory({ client: redis, replicaId: bus.replicaId });
  opts.closers.add(() => sessions.close());
  const target = redactUrl(url);
  return {
    bus,
    sessions,
    counters: open ? failOpenCounters(counters, unreachable) : counters,
    slices: open ? failOpenSlices(slices, unreachable) : slices,
    liveChildren: open ? failOpenLiveChildren(liveChildren, unreachable) : liveChildren,
    loopHistory: open ? failOpenLoopHistory(loopHistory, unreachable) : loopHistory,
    health: (): SharedHealth => ({ name: 'redis', target, ...redis.health() }),
  };
}

/** The durable store on PostgreSQL: workflows, tokens, signing keys, approvals, task owners, console sessions and the trail, on one pool. */
export async function openPostgresStore(opts: OpenStoresOptions & { url: string; bus: ControlBus; closers: Closers }) {
  const { config, log, url, bus } = opts;
  let pg: Postgres;
  try {
    pg = await openPostgres({ url, log });
  } catch (err) {
    const message = (err as Error).message;
    // The pool's own errors already name the address and what to do; say it once.
    if (/start it or fix/.test(message)) throw new Error(`store.postgres: ${message}, then start the gateway again`);
    throw new Error(`PostgreSQL at ${redactUrl(url)} (store.postgres): ${message}; start it or fix the address, then start the gateway again`);
  }
  opts.closers.add(() => pg.close());
  const control = await PgWorkflows.open({ db: pg, bus, log });
  opts.closers.add(() => control.close());
  const tokens = await PgDelegationTokens.open({ db: pg, bus, log });
  opts.closers.add(() => tokens.close());
  const keys = await PgKeyStore.open({ db: pg, bus, log });
  opts.closers.add(() => keys.close());
  const approvals = await PgApprovals.open({ db: pg });
  const taskOwners = await PgTaskOwners.open({ db: pg });
  const consoleSessions = await PgConsoleSessions.open(pg);
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
  const target = redactUrl(url);
  return { audit, tokens, keys, approvals, taskOwners, consoleSessions, health: (): SharedHealth => ({ name: 'postgres', target, ...pg.health() }) };
}

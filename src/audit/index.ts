/** The audit room's entry point: one database, the audit store and the workflow registry, opened and closed together. */
import type { GatewayConfig } from '../config/types.js';
import type { StepSink } from '../gateway/types.js';
import type { Logger } from '../telemetry/logger.js';
import { closeDatabase, openDatabase, type Db } from './db.js';
import { defaultAuditKeyPath, loadAuditKey } from './head.js';
import { AuditStore } from '../stores/sqlite/audit/store.js';
import { WorkflowRegistry } from '../stores/sqlite/workflows.js';
import { querySpend, type SpendBucket, type SpendDimension, type SpendReport } from '../stores/sqlite/spend.js';
import type { AuditLog } from '../stores/audit.js';
import type { Awaitable } from '../stores/types.js';
import type { WorkflowRegistryView } from '../stores/workflow-registry.js';

export { registerMigration, applyMigrations, openDatabase, closeDatabase, databasePath, type Db } from './db.js';
export { AuditStore, type AuditStoreOptions, type AuditStats, type CallCount, type FlushHook, type WriterHealth } from './store.js';
export type { AuditLog } from '../stores/audit.js';
export { defaultAuditKeyPath, loadAuditKey, loadSharedAuditKey } from './head.js';
export type { PruneResult } from '../stores/audit.js';
export {
  WorkflowRegistry,
  WorkflowError,
  canTransition,
  WORKFLOW_STATES,
  type WorkflowSummary,
  type WorkflowTree,
  type WorkflowStepView,
  type WorkflowListFilter,
} from '../stores/sqlite/workflows.js';
export { InvalidQueryError, type AuditFilter, type AuditRecord, type AuditPage, type AuditOutcome } from './query.js';
export { compileRedactor, redactArgs, REDACTED, DEFAULT_REDACT_PATTERNS, type Redactor } from './redact.js';
export type { VerifyResult } from './chain.js';
export { runAuditVerify } from './verify-cli.js';

export interface AuditRuntime {
  /** The SQLite database of the embedded stores; absent when the trail is in PostgreSQL. */
  db?: Db;
  store: AuditLog & { readonly queueDepth: number };
  workflows: WorkflowRegistryView;
  /** Model spend per model, agent or team from the trail (GET /admin/api/spend), queued steps included. */
  spend(by: SpendDimension, range: { from?: number; to?: number; bucket?: SpendBucket }): Awaitable<SpendReport>;
  /** What the gateway records steps into: the store, or a no-op when `audit.enabled` is false. */
  sink: StepSink;
  /** Flush queued records and counters, then close the store; resolves with how many records could not be written. */
  close(): Awaitable<number>;
}

/** The embedded runtime: what openAudit answers, with the SQLite database always there. */
export interface SqliteAuditRuntime extends AuditRuntime {
  db: Db;
  store: AuditStore;
  workflows: WorkflowRegistry;
  close(): number;
}

const noopSink: StepSink = { record() {} };

/**
 * Open `<dataDir>/switchyard.db` and build the store and the workflow registry on it, the chain keyed with
 * audit.hmacKeyFile (or `<dataDir>/keys/audit-hmac.key`, created on first start). Throws with a hint on a bad key.
 */
export function openAudit(opts: {
  dataDir: string;
  audit: GatewayConfig['audit'];
  logger?: Pick<Logger, 'warn' | 'error'>;
}): SqliteAuditRuntime {
  const configuredKey = opts.audit.hmacKeyFile;
  const hmacKey = loadAuditKey(configuredKey ?? defaultAuditKeyPath(opts.dataDir), { create: configuredKey === undefined });
  const db = openDatabase({ dataDir: opts.dataDir, durability: opts.audit.durability });
  let store: AuditStore;
  try {
    store = new AuditStore(db, {
      hmacKey,
      durability: opts.audit.durability,
      flushMs: opts.audit.flushMs,
      redact: opts.audit.redact.length > 0 ? opts.audit.redact : undefined,
      retentionDays: opts.audit.retentionDays,
      logger: opts.logger,
    });
  } catch (err) {
    closeDatabase(db);
    throw err;
  }
  const workflows = new WorkflowRegistry(db, store, { logger: opts.logger });
  let closed = false;
  return {
    db,
    store,
    workflows,
    spend(by, range) {
      store.flush();
      return querySpend(db, by, range);
    },
    sink: opts.audit.enabled ? store : noopSink,
    close() {
      if (closed) return 0;
      closed = true;
      const unwritten = store.close();
      closeDatabase(db);
      return unwritten;
    },
  };
}

/** The audit writer the gateway records steps into: the SQLite audit log (src/stores/sqlite/audit/store.ts). */
export { AuditStore, type AuditStoreOptions, type FlushHook, type FlushWork } from '../stores/sqlite/audit/store.js';
export type { AuditLog, AuditStats, CallCount, PruneResult, WriterHealth } from '../stores/audit.js';

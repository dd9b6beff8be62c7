/** The audit trail on PostgreSQL: what openStores() builds for `store.postgres` (see decision 0032). */
export { PgAuditLog, type PgAuditLogOptions } from './store.js';
export { PgAuditConsole } from './console.js';
export { hasAuditTables, verifyPgChain } from './verify.js';
export { queryPgSpend } from './spend.js';
export { CHAIN_LOCK } from './schema.js';

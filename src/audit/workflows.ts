/** The workflow registry the audit room opens beside its trail; it lives with the SQLite stores. */
export * from '../stores/sqlite/workflows.js';

/** Full-text search in audit arguments (an FTS5 index filled by the writer's flush, kept on delete by triggers) and the filter indexes. */
import { registerMigration } from '../db.js';

registerMigration(
  'audit-search',
  1,
  `
  CREATE VIRTUAL TABLE IF NOT EXISTS audit_fts USING fts5(args, content='audit', content_rowid='id');
  CREATE TRIGGER IF NOT EXISTS audit_fts_insert AFTER INSERT ON audit BEGIN
    INSERT INTO audit_fts (rowid, args) VALUES (new.id, new.args);
  END;
  CREATE TRIGGER IF NOT EXISTS audit_fts_delete AFTER DELETE ON audit BEGIN
    INSERT INTO audit_fts (audit_fts, rowid, args) VALUES ('delete', old.id, old.args);
  END;
  CREATE TRIGGER IF NOT EXISTS audit_fts_update AFTER UPDATE OF args ON audit BEGIN
    INSERT INTO audit_fts (audit_fts, rowid, args) VALUES ('delete', old.id, old.args);
    INSERT INTO audit_fts (rowid, args) VALUES (new.id, new.args);
  END;
  INSERT INTO audit_fts (audit_fts) VALUES ('rebuild');
`,
);

// Every audit filter has an index that ends in id, so a filter matching few (or no) rows never scans the trail.
registerMigration(
  'audit-search',
  2,
  `
  CREATE INDEX IF NOT EXISTS audit_server_id ON audit (server, id);
  CREATE INDEX IF NOT EXISTS audit_tool_id ON audit (tool, id);
  CREATE INDEX IF NOT EXISTS audit_user_id ON audit ("user", id);
  CREATE INDEX IF NOT EXISTS audit_reason_id ON audit (reason, id);
  CREATE INDEX IF NOT EXISTS audit_outcome_id ON audit (outcome, id);
`,
);

// The writer indexes each batch with one INSERT … SELECT in its flush transaction (batch.ts) instead of a trigger per
// row: FTS5 writes a segment at every statement's savepoint, so the per-row trigger flushed one segment per record.
registerMigration(
  'audit-search',
  3,
  `
  DROP TRIGGER IF EXISTS audit_fts_insert;
`,
);

// Rows without a user or a reason (most tool calls of a service agent; every call that went through) are left out of
// those two indexes: each index is one more B-tree insert per row in the writer, and an equality filter (`user = ?`,
// `reason = ?`) implies IS NOT NULL, so SQLite still reads the partial index for it.
registerMigration(
  'audit-search',
  4,
  `
  DROP INDEX IF EXISTS audit_user_id;
  DROP INDEX IF EXISTS audit_reason_id;
  CREATE INDEX audit_user_id ON audit ("user", id) WHERE "user" IS NOT NULL;
  CREATE INDEX audit_reason_id ON audit (reason, id) WHERE reason IS NOT NULL;
`,
);

/** Index the args of the rows with ids in (after, last] into audit_fts; run in the transaction that inserted them. */
export const INDEX_ARGS_SQL = 'INSERT INTO audit_fts (rowid, args) SELECT id, args FROM audit WHERE id > ? AND id <= ?';

/** The user's text as one FTS5 phrase: its words in order, with no query syntax of its own. */
export function searchPhrase(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

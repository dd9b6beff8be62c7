/** Full-text search in audit arguments (an FTS5 index kept by triggers, no second write path) and the filter indexes. */
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

/** The user's text as one FTS5 phrase: its words in order, with no query syntax of its own. */
export function searchPhrase(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

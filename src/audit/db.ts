/** The gateway database as the audit room and its tools open it; it lives with the SQLite stores. */
export {
  DB_FILE_NAME,
  applyMigrations,
  closeDatabase,
  databasePath,
  openDatabase,
  openDatabaseReadOnly,
  registerMigration,
  registeredMigrations,
  type Db,
  type Migration,
  type OpenDatabaseOptions,
} from '../stores/sqlite/db.js';

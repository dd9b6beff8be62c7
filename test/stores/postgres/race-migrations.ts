// Migrations that fail when run twice (no IF NOT EXISTS, a row per run), so a double application shows.
export const RACE_MIGRATIONS = [
  { room: 'racetest', version: 1, sql: 'CREATE TABLE racetest (n INTEGER NOT NULL); INSERT INTO racetest (n) VALUES (1)' },
  { room: 'racetest', version: 2, sql: 'ALTER TABLE racetest ADD COLUMN note TEXT; INSERT INTO racetest (n, note) VALUES (2, $$v2$$)' },
] as const;

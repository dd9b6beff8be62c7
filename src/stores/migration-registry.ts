/**
 * The rules both databases' migrations follow (src/stores/sqlite/db.ts, src/stores/postgres/migrations.ts): versions
 * ascend per room, and a shipped migration never changes. Each store keeps one registry and applies it its own way.
 */

export interface Migration {
  /** The room that owns the tables, e.g. 'workflows', 'audit'; versions are numbered per room. */
  room: string;
  version: number;
  /** SQL run inside one transaction with the version bookkeeping (several statements allowed). */
  sql: string;
}

/** A (room, version) pair as one map key. */
export function migrationKey(room: string, version: number): string {
  return `${room}\u0000${version}`;
}

export class MigrationRegistry {
  private readonly byKey = new Map<string, Migration>();

  /**
   * Add a room's migration; returns false when this (room, version) was already registered with identical SQL (a
   * no-op). Different SQL throws, because a shipped migration must never change — add a new version instead.
   */
  add(room: string, version: number, sql: string): boolean {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(room)) {
      throw new Error(`migration room "${room}" must match ^[a-z][a-z0-9_-]{0,31}$ (use your src/ room name)`);
    }
    if (!Number.isInteger(version) || version < 1) {
      throw new Error(`migration ${room} v${version}: version must be a positive integer`);
    }
    const existing = this.byKey.get(migrationKey(room, version));
    if (existing) {
      if (existing.sql === sql) return false;
      throw new Error(`migration ${room} v${version} is already registered with different SQL; add version ${version + 1} instead`);
    }
    this.byKey.set(migrationKey(room, version), { room, version, sql });
    return true;
  }

  /** Every registered migration, each room's versions ascending. */
  all(): Migration[] {
    return [...this.byKey.values()].sort((a, b) => (a.room === b.room ? a.version - b.version : a.room < b.room ? -1 : 1));
  }
}

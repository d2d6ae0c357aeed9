/**
 * Migrations for the SQLite driver: migrations/NNN_name.sql, applied in order, each in its own write transaction
 * together with its row in the `migrations` ledger.
 *
 * Concurrent migrators (several processes opening one file at once) are safe: BEGIN IMMEDIATE takes the file's
 * write lock before the ledger is read, so they run one at a time, and each sees what the one before applied.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { DatabaseSync } from "node:sqlite";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

export type Migration = { name: string; sql: string };

/** The driver's migrations, in the order they apply. */
export function migrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d+_.+\.sql$/.test(file))
    .sort()
    .map((file) => ({ name: file.replace(/\.sql$/, ""), sql: readFileSync(new URL(file, MIGRATIONS_DIR), "utf8") }));
}

/** Creates the ledger if the file has none yet: a store reads it (migrationStatus, ping) before any migration. */
export function createLedger(db: DatabaseSync): void {
  db.exec("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
}

/** Applies the pending migrations; returns the names applied now. */
export function migrate(db: DatabaseSync): string[] {
  const applied: string[] = [];
  for (const migration of migrations()) {
    db.exec("BEGIN IMMEDIATE");
    try {
      if (db.prepare("SELECT 1 FROM migrations WHERE name = ?").get(migration.name) === undefined) {
        db.exec(migration.sql);
        db.prepare("INSERT INTO migrations (name, applied_at) VALUES (?, ?)").run(migration.name, Date.now());
        applied.push(migration.name);
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
  return applied;
}

/** Every known migration and whether the file has it. */
export function migrationStatus(db: DatabaseSync): { name: string; applied: boolean }[] {
  const done = new Set(
    db
      .prepare("SELECT name FROM migrations")
      .all()
      .map((row) => String(row.name)),
  );
  return migrations().map(({ name }) => ({ name, applied: done.has(name) }));
}

/**
 * Migrations for the PostgreSQL driver: migrations/NNN_name.sql, applied in order, each in its own transaction
 * together with its row in the `migrations` ledger of the install's schema.
 *
 * Concurrent migrators (several nodes starting at once) are safe: every migration transaction first takes a
 * transaction-scoped advisory lock keyed on the schema name, so they run one at a time, and each re-reads the
 * ledger under the lock before applying anything. The lock also covers CREATE SCHEMA IF NOT EXISTS, which is
 * not safe against itself when two sessions race.
 */
import { readdirSync, readFileSync } from "node:fs";
import type pg from "pg";
import { quoteSchema, withSchema } from "./statements.ts";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

export type Migration = { name: string; sql: string };

/** node-postgres takes a per-query `query_timeout` over the pool's; its types do not list it. */
type UntimedQuery = pg.QueryConfig & { query_timeout: number };

/** A statement of a migration, or the wait for another node's: an hour (the pool's deadline is seconds). */
const MIGRATION_TIMEOUT_MS = 3_600_000;

/** The driver's migrations, in the order they apply. */
export function migrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d+_.+\.sql$/.test(file))
    .sort()
    .map((file) => ({ name: file.replace(/\.sql$/, ""), sql: readFileSync(new URL(file, MIGRATIONS_DIR), "utf8") }));
}

/** Applies the pending migrations to `schema` (creating it if missing); returns the names applied now. */
export async function migrate(pool: pg.Pool, schema: string): Promise<string[]> {
  const quoted = quoteSchema(schema);
  // Fast path for the usual start of a node: everything is applied already (a migration is never undone).
  const pending = new Set((await migrationStatus(pool, schema)).filter((m) => !m.applied).map((m) => m.name));
  const applied: string[] = [];
  for (const migration of migrations().filter((m) => pending.has(m.name))) {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      // Waiting for another node's migration, and a migration itself (an index on a large table), may take far
      // longer than the pool's deadlines: the server's (statement_timeout) and the client's (query_timeout).
      await client.query("SET LOCAL statement_timeout = 0");
      await client.query({
        text: "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        values: [`conveyor:migrate:${schema}`],
        query_timeout: MIGRATION_TIMEOUT_MS,
      } as UntimedQuery);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${quoted}.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)`,
      );
      const done = await client.query(`SELECT 1 FROM ${quoted}.migrations WHERE name = $1`, [migration.name]);
      if (done.rowCount === 0) {
        await client.query({
          text: withSchema(migration.sql, schema),
          query_timeout: MIGRATION_TIMEOUT_MS,
        } as UntimedQuery);
        await client.query(`INSERT INTO ${quoted}.migrations (name, applied_at) VALUES ($1, $2)`, [
          migration.name,
          new Date(),
        ]);
        applied.push(migration.name);
      }
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      client.release(broken);
    }
  }
  return applied;
}

/** Every known migration and whether `schema` has it (none, when the schema or its ledger does not exist yet). */
export async function migrationStatus(pool: pg.Pool, schema: string): Promise<{ name: string; applied: boolean }[]> {
  let done = new Set<string>();
  try {
    const result = await pool.query<{ name: string }>(`SELECT name FROM ${quoteSchema(schema)}.migrations`);
    done = new Set(result.rows.map((row) => row.name));
  } catch (error) {
    // 3F000: no such schema; 42P01: no such table. Both mean nothing is applied yet.
    const code = (error as { code?: unknown }).code;
    if (code !== "3F000" && code !== "42P01") throw error;
  }
  return migrations().map(({ name }) => ({ name, applied: done.has(name) }));
}

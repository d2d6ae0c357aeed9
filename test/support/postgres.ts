/**
 * PostgreSQL for tests: where it is, whether it answers, and a throw-away schema per store.
 *
 * The server is CONVEYOR_TEST_POSTGRES_URL, or postgres://postgres@127.0.0.1:5432/test. When it does not answer,
 * a test that needs it FAILS under CI=true and is skipped with a loud warning otherwise, so a laptop without
 * PostgreSQL still runs the rest of the suite.
 */
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import pg from "pg";

const PROBE_TIMEOUT_MS = 3000;

export function postgresUrl(): string {
  return process.env.CONVEYOR_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
}

let probe: Promise<boolean> | null = null;

/** Whether PostgreSQL answers `SELECT 1` (probed once per process). */
export function postgresAvailable(): Promise<boolean> {
  probe ??= (async () => {
    const client = new pg.Client({ connectionString: postgresUrl(), connectionTimeoutMillis: PROBE_TIMEOUT_MS });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probe;
}

function unavailable(what: string): string {
  return `PostgreSQL is not reachable at ${postgresUrl()}: ${what}`;
}

/**
 * Inside a test: true when PostgreSQL answers. Otherwise throws under CI=true, or skips the test with a loud
 * warning and returns false (the caller returns at once).
 */
export async function requirePostgres(t: TestContext): Promise<boolean> {
  if (await postgresAvailable()) return true;
  if (process.env.CI === "true") throw new Error(unavailable("CI=true requires it"));
  console.warn(`\n!!! ${unavailable(`skipping "${t.name}"`)}. Start it, or set CI=true to make this a failure. !!!\n`);
  t.skip("PostgreSQL is not reachable");
  return false;
}

/**
 * At the top of a test file: true when PostgreSQL answers, and the file defines its tests. Otherwise it registers
 * one test named `name` that fails under CI=true or is skipped with a loud warning, and returns false.
 */
export async function postgresSuite(name: string): Promise<boolean> {
  if (await postgresAvailable()) return true;
  test(name, async (t) => {
    await requirePostgres(t);
  });
  return false;
}

let schemaCount = 0;

/** A schema name no other test (or test process) uses: prefix, pid, a counter and random bits. */
export function freshSchema(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z_]/, "_").slice(0, 30);
  return `${clean}_${process.pid}_${++schemaCount}_${randomBytes(3).toString("hex")}`;
}

/** Drops a schema and everything in it (no error when it does not exist). */
export async function dropSchema(name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a schema name: ${name}`);
  const client = new pg.Client({ connectionString: postgresUrl(), connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

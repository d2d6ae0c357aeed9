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
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .replace(/^[^a-z_]/, "_")
    .slice(0, 30);
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

/**
 * Rows the server read from `schema`.`table` (sequentially or through an index) and its sequential scans, once
 * every connection of the store on that schema has closed: a backend hands its counts to the statistics when it
 * exits (or at most once a second when idle), so they are complete only then.
 */
export async function tableReads(schema: string, table: string): Promise<{ rows: number; seqScans: number }> {
  const client = new pg.Client({ connectionString: postgresUrl(), connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on("error", () => {});
  await client.connect();
  try {
    const read = async () => {
      const { rows } = await client.query(
        `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS rows, seq_scan FROM pg_stat_user_tables
         WHERE schemaname = $1 AND relname = $2`,
        [schema, table],
      );
      return { rows: Number(rows[0]?.rows ?? 0), seqScans: Number(rows[0]?.seq_scan ?? 0) };
    };
    for (let i = 0; i < 200; i++) {
      const open = await client.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [
        `conveyor-store-${schema}`.slice(0, 63),
      ]);
      if (Number(open.rows[0].n) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    // A backend leaves pg_stat_activity a moment before its last counts land: read until two reads agree.
    let last = await read();
    for (let i = 0; i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      const next = await read();
      if (next.rows === last.rows && next.seqScans === last.seqScans) return next;
      last = next;
    }
    return last;
  } finally {
    await client.end();
  }
}

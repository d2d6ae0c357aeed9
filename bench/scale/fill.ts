/**
 * Fills a Conveyor store with finished tasks, as retention leaves them (taskRetentionMs is 7 days): `count`
 * completed no-op tasks of the bench's own type and queue, created from 5 days to 1 hour ago in id order (ids grow
 * with created_at, which the pruner relies on), each finished 22 ms after it was added, written by SQL straight into
 * Conveyor's tables (migrations 001–009) for speed. queue_counts gets the completed count, as the store keeps it in
 * the same transaction as each change; no event-log rows: the events of tasks days old are pruned already
 * (eventRetentionMs is 1 day), and a task's history may be empty.
 */
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import type { ConveyorOptions } from "../../src/index.ts";

/** Rows per statement: a progress line each, and no statement long enough to look hung. */
const CHUNK = 100_000;
const OLDEST_MS = 5 * 24 * 3600_000;
const NEWEST_MS = 3600_000;
export const FILLER_NODE = "node-filler";

export async function fillFinished(
  options: ConveyorOptions,
  count: number,
  progress: (done: number) => void,
): Promise<void> {
  if (count === 0) return;
  const from = Date.now() - OLDEST_MS;
  const stepMs = (OLDEST_MS - NEWEST_MS) / count;
  if (options.database === undefined) throw new Error("fillFinished: the store's options name no database");
  if (/^postgres(ql)?:/.test(options.database)) {
    await fillPostgres(options.database, options.schema ?? "conveyor", count, from, stepMs, progress);
  } else {
    fillSqlite(options.database, count, from, stepMs, progress);
  }
}

function fillSqlite(path: string, count: number, from: number, stepMs: number, progress: (done: number) => void) {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA busy_timeout = 10000");
    // The recursive CTE makes the rows inside SQLite: no row crosses into JavaScript.
    const insert = db.prepare(`
      WITH RECURSIVE seq(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < :end)
      INSERT INTO tasks (queue, type, data, priority, state, attempt, max_attempts, stalls, run_at, result, errors,
                         node, created_at, started_at, finished_at, event_refs)
      SELECT 'default', 'bench.noop', 'null', 0, 'completed', 1, 3, 0, t, 'null', '[]', '${FILLER_NODE}', t, t + 20, t + 22, ''
      FROM (SELECT CAST(:from + i * :step AS INTEGER) AS t FROM seq)`);
    const counted = db.prepare(`
      INSERT INTO queue_counts (queue, state, count) VALUES ('default', 'completed', :count)
      ON CONFLICT (queue, state) DO UPDATE SET count = count + excluded.count`);
    for (let first = 0; first < count; first += CHUNK) {
      const end = Math.min(count, first + CHUNK);
      db.exec("BEGIN IMMEDIATE");
      try {
        insert.run({ first, end, from, step: stepMs });
        counted.run({ count: end - first });
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      progress(end);
    }
  } finally {
    db.close();
  }
}

async function fillPostgres(
  url: string,
  schema: string,
  count: number,
  from: number,
  stepMs: number,
  progress: (done: number) => void,
) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const s = `"${schema.replaceAll('"', '""')}"`;
  try {
    for (let first = 0; first < count; first += CHUNK) {
      const end = Math.min(count, first + CHUNK);
      await client.query("BEGIN");
      try {
        await client.query(
          `INSERT INTO ${s}.tasks (queue, type, data, priority, state, attempt, max_attempts, stalls, run_at, result,
                                   errors, node, created_at, started_at, finished_at, event_refs)
           SELECT 'default', 'bench.noop', 'null', 0, 'completed', 1, 3, 0, t, 'null', '[]', '${FILLER_NODE}',
                  t, t + interval '20 ms', t + interval '22 ms', '{}'
           FROM (SELECT to_timestamp(($1::float8 + i * $2::float8) / 1000) AS t FROM generate_series($3::int, $4::int - 1) AS i) rows`,
          [from, stepMs, first, end],
        );
        await client.query(
          `INSERT INTO ${s}.queue_counts (queue, state, shard, count) VALUES ('default', 'completed', 0, $1)
           ON CONFLICT (queue, state, shard) DO UPDATE SET count = queue_counts.count + excluded.count`,
          [end - first],
        );
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      }
      progress(end);
    }
    // What autovacuum would have done to rows days old: their visibility map set and the planner's statistics taken
    // (and it will not start on them in the middle of the measurement instead).
    await client.query(`VACUUM (ANALYZE) ${s}.tasks`);
    // And written to disk long ago: the checkpoint that the fill's WAL calls for must not run during the measurement.
    await client.query("CHECKPOINT");
  } finally {
    await client.end();
  }
}

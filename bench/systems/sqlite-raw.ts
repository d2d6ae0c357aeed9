/**
 * SQLite's physical limit: the claim-and-complete loop with no runtime around it, on node:sqlite with the
 * pragmas Conveyor's store uses (WAL, synchronous=NORMAL). A minimal tasks table with the same claim
 * index as Conveyor's (queue, priority DESC, id WHERE state = 'queued'), no event log, no other indexes.
 *
 * - enqueue: one transaction per batch of 500, a prepared single-row INSERT per row;
 * - drain: per batch, one autocommit `UPDATE … WHERE id IN (SELECT … ORDER BY priority DESC, id LIMIT 50)
 *   RETURNING id` claim, then one autocommit completion statement for the 50 ids;
 * - latency: one single-row INSERT in its own transaction per latency task (the floor under add→start).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { BenchSystem, ChildJob } from "../lib/types.ts";

const CLAIM_LIMIT = 50;

export function create(_job: ChildJob): BenchSystem {
  let dir: string | null = null;
  let db: DatabaseSync | null = null;
  let insertOne: StatementSync | null = null;
  return {
    info: {
      name: "sqlite-raw",
      kind: "raw",
      store: "sqlite",
      settings: `node:sqlite ${process.versions.sqlite}, WAL, synchronous=NORMAL; claim ${CLAIM_LIMIT} (UPDATE … WHERE id IN (SELECT … ORDER BY priority DESC, id LIMIT ${CLAIM_LIMIT}) RETURNING id) + 1 completion UPDATE per batch, each autocommit`,
      versions: { sqlite: process.versions.sqlite ?? "?" },
    },
    async setup() {
      dir = mkdtempSync(join(tmpdir(), "conveyor-bench-raw-"));
      db = new DatabaseSync(join(dir, "raw.db"));
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec(`
        CREATE TABLE tasks (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          queue TEXT NOT NULL,
          type TEXT NOT NULL,
          data TEXT NOT NULL DEFAULT 'null',
          priority INTEGER NOT NULL DEFAULT 0,
          state TEXT NOT NULL,
          attempt INTEGER NOT NULL DEFAULT 0,
          node TEXT,
          created_at INTEGER NOT NULL,
          started_at INTEGER,
          finished_at INTEGER
        );
        CREATE INDEX tasks_claim ON tasks (queue, priority DESC, id) WHERE state = 'queued';`);
    },
    async enqueueBatch(count) {
      const insert = db!.prepare(
        "INSERT INTO tasks (queue, type, data, priority, state, created_at) VALUES ('default', 'bench.noop', 'null', 0, 'queued', ?)",
      );
      const now = Date.now();
      db!.exec("BEGIN IMMEDIATE");
      for (let i = 0; i < count; i++) insert.run(now);
      db!.exec("COMMIT");
    },
    async addOne() {
      // The floor under add→start: one single-row insert in its own transaction (commit included).
      insertOne ??= db!.prepare(
        "INSERT INTO tasks (queue, type, data, priority, state, created_at) VALUES ('latency', 'bench.noop', 'null', 0, 'queued', ?)",
      );
      insertOne.run(Date.now());
    },
    async drainLoop(progress) {
      const claim = db!.prepare(`
        UPDATE tasks SET state = 'running', attempt = attempt + 1, node = 'bench', started_at = :now
        WHERE id IN (
          SELECT id FROM tasks WHERE state = 'queued' AND queue = 'default'
          ORDER BY priority DESC, id LIMIT ${CLAIM_LIMIT}
        )
        RETURNING id`);
      const complete = db!.prepare(`
        UPDATE tasks SET state = 'completed', finished_at = :now
        WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'running'`);
      let done = 0;
      for (;;) {
        const rows = claim.all({ now: Date.now() }) as { id: number }[];
        if (rows.length === 0) break;
        const result = complete.run({ now: Date.now(), ids: JSON.stringify(rows.map((r) => r.id)) });
        done += Number(result.changes);
        progress(done);
        // Let the progress timer fire now and then; the loop is otherwise synchronous.
        if (done % 5000 < CLAIM_LIMIT) await new Promise((resolve) => setImmediate(resolve));
      }
      return done;
    },
    async teardown() {
      try {
        db?.close();
      } catch {}
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The SQLite driver against the store conformance suite (each test gets its own database file), and its
 * upgrades of files written by earlier versions.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, test } from "node:test";
import { describeStoreConformance } from "../conformance/index.ts";
import { SqliteStore } from "./sqlite-store.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describeStoreConformance("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-sqlite-"));
  dirs.push(dir);
  const store = new SqliteStore({ path: join(dir, "conveyor.db") });
  await store.migrate();
  return store;
});

describe("sqlite migration 003 (lean writes) on a database written by 001–002", () => {
  /** A database file at migration 002, as an earlier Conveyor left it. */
  function databaseAt002(setup: (db: DatabaseSync) => void): string {
    const dir = mkdtempSync(join(tmpdir(), "conveyor-sqlite-upgrade-"));
    dirs.push(dir);
    const path = join(dir, "conveyor.db");
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
    for (const name of ["001_init", "002_cluster"]) {
      db.exec(readFileSync(new URL(`./migrations/${name}.sql`, import.meta.url), "utf8"));
      db.prepare("INSERT INTO migrations (name, applied_at) VALUES (?, 0)").run(name);
    }
    setup(db);
    db.close();
    return path;
  }

  const oldTask = (db: DatabaseSync) => (id: number, queue: string, state: string) =>
    db
      .prepare(
        `INSERT INTO tasks (id, queue, type, state, max_attempts, run_at, created_at) VALUES (?, ?, 't', ?, 3, 0, 0)`,
      )
      .run(id, queue, state);

  test("keeps events, their offsets and each task's history, and counts the tasks", async () => {
    const path = databaseAt002((db) => {
      const task = oldTask(db);
      task(1, "a", "completed");
      task(2, "a", "queued");
      task(3, "b", "running");
      const event = db.prepare("INSERT INTO events (type, task_id, queue, data, at) VALUES (?, ?, ?, ?, ?)");
      event.run("task.created", 1, "a", '{"x":1}', 10);
      event.run("task.created", 2, "a", "null", 11);
      event.run("task.started", 1, "a", "null", 12);
      event.run("task.completed", 1, "a", "null", 13);
      event.run("task.created", 3, "b", "null", 14);
      event.run("task.started", 3, "b", "null", 15);
    });
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.migrate(), {
        applied: [
          "003_lean_writes",
          "004_plans_by_id",
          "005_live_log",
          "006_dashboard",
          "007_dispatch",
          "008_sequencer_without_join",
          "009_running_ids",
        ],
      });
      const events = await store.eventList({ after: 0, limit: 100 });
      assert.deepEqual(
        events.map((e) => [e.offset, e.type, e.taskId]),
        [
          [1, "task.created", 1],
          [2, "task.created", 2],
          [3, "task.started", 1],
          [4, "task.completed", 1],
          [5, "task.created", 3],
          [6, "task.started", 3],
        ],
      );
      assert.deepEqual(events[0]!.data, { x: 1 });
      assert.deepEqual(events[0]!.at, new Date(10));
      assert.deepEqual(
        (await store.eventList({ after: 0, limit: 100, taskId: 1 })).map((e) => e.offset),
        [1, 3, 4],
      );
      const counts = new Map((await store.queueStats()).map((q) => [q.queue, q.counts]));
      assert.equal(counts.get("a")!.completed, 1);
      assert.equal(counts.get("a")!.queued, 1);
      assert.equal(counts.get("b")!.running, 1);
      const [claimed] = await store.taskClaim({ queue: "a", types: ["t"], node: "n", limit: 1, now: new Date(20) });
      assert.equal(claimed!.id, 2);
      assert.deepEqual(
        (await store.eventList({ after: 6, limit: 10 })).map((e) => [e.offset, e.type]),
        [[7, "task.started"]],
      );
      assert.deepEqual(
        (await store.eventList({ after: 0, limit: 10, taskId: 2 })).map((e) => e.offset),
        [2, 7],
      );
    } finally {
      await store.close();
    }
  });

  test("a log the pruner emptied keeps counting from its last offset", async () => {
    const path = databaseAt002((db) => {
      oldTask(db)(1, "a", "queued");
      const event = db.prepare(
        "INSERT INTO events (type, task_id, queue, data, at) VALUES ('task.created', 1, 'a', 'null', 1)",
      );
      for (let i = 0; i < 5; i++) event.run();
      db.exec("DELETE FROM events");
    });
    const store = new SqliteStore({ path });
    try {
      await store.migrate();
      assert.equal(await store.eventLastOffset(), 5);
      assert.deepEqual(await store.eventList({ after: 0, limit: 10 }), []);
      await store.taskClaim({ queue: "a", types: ["t"], node: "n", limit: 1, now: new Date(20) });
      assert.deepEqual(
        (await store.eventList({ after: 0, limit: 10 })).map((e) => e.offset),
        [6],
      );
    } finally {
      await store.close();
    }
  });
});

/**
 * The PostgreSQL event log is gap-free, and never numbers an event behind a reader's cursor, beyond what the
 * conformance suite can show with one writer at a time.
 *
 * The trap: with a sequence (bigserial), offsets are handed out when a transaction asks, not when it commits. A
 * reader tailing `offset > cursor` sees offset 2 committed while offset 1 is still in flight, moves its cursor to
 * 2, and never sees 1. The driver's writers take no offset at all: each log row carries its transaction's id, and
 * the sequencer, which readers run before they read, numbers only the rows of transactions below the snapshot's
 * xmin, which have certainly ended, in (xid, id) order (migrations/003_lean_writes.sql). So writers never wait for
 * each other, and a transaction that stays open holds the stream back instead: what committed after it is
 * numbered once it ends, after it.
 *
 * Some writes here run the driver's own statements inside hand-made transactions, with random delays before
 * and after the statement (the delay after it stands for a slow commit, the dangerous case), and some of those
 * transactions roll back.
 *
 * The same statements keep the counts per queue and state (queue_counts, in shards) and each task's list of log
 * rows (event_refs): the last test has many connections change them at once.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import pg from "pg";
import { TASK_STATES, type TaskState } from "../../core/states.ts";
import type { TaskEvent } from "../../core/task.ts";
import type { TaskInsert } from "../store.ts";
import { PostgresStore } from "./postgres-store.ts";
import { loadStatements } from "./statements.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");
const WRITERS = 8;
const TRANSITIONS_PER_WRITER = 200;

function taskInput(queue: string): TaskInsert {
  return { queue, type: "t", data: null, priority: 0, maxAttempts: 3, runAt: T0, key: null, timeoutMs: null, backoffMs: null };
}

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  return client;
}

/** Whether `promise` is still pending after `ms`. */
async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  return (await Promise.race([promise, sleep(ms, pending)])) === pending;
}

if (await postgresSuite("postgres event log")) {
  const schemas: string[] = [];
  after(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  async function openStore(prefix: string, poolSize = 4): Promise<PostgresStore> {
    const schema = freshSchema(prefix);
    schemas.push(schema);
    const store = new PostgresStore({ connectionString: postgresUrl(), schema, poolSize });
    await store.migrate();
    return store;
  }

  describe("postgres event log", () => {
    test("a bigserial reader can skip a row that commits late (the trap this log avoids)", async () => {
      const schema = freshSchema("bigserial");
      schemas.push(schema);
      const [a, b, reader] = await Promise.all([connect(), connect(), connect()]);
      try {
        await reader.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".log (id bigserial PRIMARY KEY)`);
        await a.query("BEGIN");
        await a.query(`INSERT INTO "${schema}".log DEFAULT VALUES`); // takes id 1, commits late
        await b.query("BEGIN");
        await b.query(`INSERT INTO "${schema}".log DEFAULT VALUES`); // takes id 2, commits first
        await b.query("COMMIT");
        const first = await reader.query(`SELECT id::int FROM "${schema}".log WHERE id > 0 ORDER BY id`);
        assert.deepEqual(first.rows.map((r) => r.id), [2]);
        await a.query("COMMIT");
        const next = await reader.query(`SELECT id::int FROM "${schema}".log WHERE id > 2 ORDER BY id`);
        assert.deepEqual(next.rows, [], "with its cursor at 2, the reader never sees id 1");
      } finally {
        await Promise.all([a.end(), b.end(), reader.end()]);
      }
    });

    test("writers never wait for each other; an open writer holds the stream back, and its events come first", async () => {
      const store = await openStore("eventlog_order");
      const progress = loadStatements(store.schema).get("taskProgress")!;
      const [a, b] = await Promise.all([connect(), connect()]);
      /** Progress `percent` of task `id`: in an open transaction of `client`, or through the store (autocommit). */
      const report = (id: number, percent: number, client?: pg.Client) => client === undefined
        ? store.taskProgress({ id, attempt: 1, progress: { percent }, now: T0 })
        : client.query(progress, [id, 1, JSON.stringify({ percent }), T0]);
      const listed = async (after: number) => (await store.eventList({ after, limit: 10 })).map((e) => [e.offset, e.taskId, e.data]);
      try {
        await store.taskInsertMany({ now: T0, tasks: [taskInput("q"), taskInput("q")] });
        const [one, two] = (await store.taskClaim({ queue: "q", types: ["t"], node: "n", limit: 2, now: T0 })).map((t) => t.id);
        let cursor = await store.eventLastOffset();

        // a writes first and stays open; the store writes after it and commits at once, without waiting for a.
        await a.query("BEGIN");
        await report(one!, 1, a);
        const second = report(two!, 2);
        assert.equal(await stillPending(second, 1000), false, "the second writer does not wait for the first");
        await second;
        assert.deepEqual(await listed(cursor), [], "its event waits for a, which may still commit");
        assert.equal(await store.eventLastOffset(), cursor);
        await a.query("COMMIT");
        assert.deepEqual(await listed(cursor), [
          [cursor + 1, one, { attempt: 1, percent: 1 }], [cursor + 2, two, { attempt: 1, percent: 2 }],
        ], "a's event comes first, though it committed second");
        cursor += 2;

        // a writes first, b after it and stays open: a transaction that wrote later holds back no earlier one.
        await a.query("BEGIN");
        await b.query("BEGIN");
        await report(one!, 3, a);
        const third = report(two!, 4, b);
        assert.equal(await stillPending(third, 1000), false, "b does not wait for a");
        await third;
        await a.query("COMMIT");
        assert.deepEqual(await listed(cursor), [[cursor + 1, one, { attempt: 1, percent: 3 }]]);
        await b.query("COMMIT");
        assert.deepEqual(await listed(cursor), [
          [cursor + 1, one, { attempt: 1, percent: 3 }], [cursor + 2, two, { attempt: 1, percent: 4 }],
        ]);
        cursor += 2;

        // A writer that rolls back holds the stream back while it is open, and leaves no gap.
        await a.query("BEGIN");
        await report(one!, 5, a);
        await report(two!, 6);
        assert.deepEqual(await listed(cursor), []);
        await a.query("ROLLBACK");
        assert.deepEqual(await listed(cursor), [[cursor + 1, two, { attempt: 1, percent: 6 }]]);
        assert.equal(await store.eventLastOffset(), cursor + 1);
      } finally {
        await Promise.all([a.end(), b.end()]);
        await store.close();
      }
    });

    test(`${WRITERS} concurrent writers, ${TRANSITIONS_PER_WRITER} transitions each: a tailing reader sees every offset once, in order`, async () => {
      const store = await openStore("eventlog_tail", WRITERS + 2);
      const progress = loadStatements(store.schema).get("taskProgress")!;
      const clients = await Promise.all(Array.from({ length: WRITERS }, connect));
      const total = WRITERS * TRANSITIONS_PER_WRITER;
      let writersDone = false;
      let stopped = false;
      let rolledBack = 0;

      /** created + started + progress... + completed = TRANSITIONS_PER_WRITER committed events for one task. */
      async function writer(index: number): Promise<number> {
        const client = clients[index]!;
        const queue = `w${index}`;
        await store.taskInsertMany({ now: T0, tasks: [taskInput(queue)] });
        const [task] = await store.taskClaim({ queue, types: ["t"], node: `n${index}`, limit: 1, now: T0 });
        assert.ok(task);
        for (let step = 1; step <= TRANSITIONS_PER_WRITER - 3; ) {
          const values = [task.id, 1, JSON.stringify({ percent: step % 100 }), T0];
          if (Math.random() < 0.5) {
            assert.equal(await store.taskProgress({ id: task.id, attempt: 1, progress: { percent: step % 100 }, now: T0 }), true);
            step++;
            continue;
          }
          await client.query("BEGIN");
          await sleep(Math.random() * 2);
          await client.query(progress, values);
          await sleep(Math.random() * 2); // a slow commit
          if (Math.random() < 0.1) {
            await client.query("ROLLBACK"); // its log row goes with it, before it has an offset
            rolledBack++;
          } else {
            await client.query("COMMIT");
            step++;
          }
        }
        assert.deepEqual(await store.taskComplete({ now: T0, completions: [{ id: task.id, attempt: 1, result: null }] }), [task.id]);
        return task.id;
      }

      const seen: TaskEvent[] = [];
      async function reader(): Promise<void> {
        let cursor = 0;
        while (!stopped && !(writersDone && cursor === total)) {
          const last = await store.eventLastOffset();
          const events = await store.eventList({ after: cursor, limit: 5000 });
          for (const event of events) {
            assert.equal(event.offset, cursor + 1, `after offset ${cursor} the reader got ${event.offset}`);
            cursor = event.offset;
            seen.push(event);
          }
          assert.ok(cursor >= last, `every offset up to the last one given (${last}) is visible (cursor ${cursor})`);
          assert.ok(cursor <= total, "no more events than transitions");
          if (events.length === 0) await sleep(1);
        }
      }

      const tail = reader();
      tail.catch(() => {}); // reported when awaited below; no unhandled rejection meanwhile
      try {
        const ids = await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
        writersDone = true;
        await tail;

        assert.equal(seen.length, total);
        assert.deepEqual(seen.map((e) => e.offset), Array.from({ length: total }, (_, i) => i + 1));
        assert.equal(await store.eventLastOffset(), total);
        assert.equal((await store.eventList({ after: 0, limit: total + 10 })).length, total);
        for (const id of ids) {
          const types = seen.filter((e) => e.taskId === id).map((e) => e.type);
          assert.deepEqual(types, [
            "task.created", "task.started", ...Array<string>(TRANSITIONS_PER_WRITER - 3).fill("task.progress"), "task.completed",
          ], `events of task ${id} in the order they happened`);
        }
        assert.ok(rolledBack > 0, "some transactions rolled back (and left no gap)");
        const log = await clients[0]!.query(`SELECT count(*)::int AS rows, sum(count)::int AS events FROM "${store.schema}".event_log`);
        assert.deepEqual(log.rows[0], { rows: total, events: total }, "one log row per committed statement, each of one event here");
      } finally {
        stopped = true;
        await tail.catch(() => {});
        await Promise.all(clients.map((client) => client.end()));
        await store.close();
      }
    });

    test(`${WRITERS} writers inserting, claiming, finishing and rescheduling at once keep counts and histories exact`, async () => {
      const store = await openStore("eventlog_counts", WRITERS + 2);
      const queues = ["q1", "q2", "q3"];
      const BATCHES = 8;
      const TASKS_PER_BATCH = 4;
      const retried = new Set<number>();

      /** Inserts its tasks, then works any queue until no task is left to work, ending each task one way or another. */
      async function writer(index: number): Promise<void> {
        for (let batch = 0; batch < BATCHES; batch++) {
          await store.taskInsertMany({
            now: T0, tasks: Array.from({ length: TASKS_PER_BATCH }, (_, k) => taskInput(queues[(index + batch + k) % queues.length]!)),
          });
        }
        for (let round = 0, idle = 0; idle < 3; round++) {
          assert.ok(round < 1000, "the work runs out");
          const queue = queues[Math.floor(Math.random() * queues.length)]!;
          await store.taskPromote({ now: T0, limit: 5 });
          const claimed = await store.taskClaim({ queue, types: ["t"], node: `n${index}`, limit: 4, now: T0 });
          if (claimed.length === 0) {
            const stats = await store.queueStats();
            if (stats.every((q) => q.counts.queued + q.counts.scheduled + q.counts.running === 0)) idle++;
            continue;
          }
          const completions = [];
          for (const task of claimed) {
            const roll = Math.random();
            if (roll < 0.2 && !retried.has(task.id)) {
              retried.add(task.id);
              const error = { name: "Error", message: "again", attempt: task.attempt, at: T0.toISOString() };
              await store.taskFail({ id: task.id, attempt: task.attempt, error, retryAt: T0, now: T0 });
            } else if (roll < 0.3) {
              await store.taskCancel({ id: task.id, reason: "enough", now: T0 });
            } else {
              completions.push({ id: task.id, attempt: task.attempt, result: null });
            }
          }
          await store.taskComplete({ now: T0, completions });
        }
      }

      const client = await connect();
      try {
        await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
        const total = WRITERS * BATCHES * TASKS_PER_BATCH;
        const tasks = await store.taskList({ limit: total + 10, order: "asc" });
        assert.equal(tasks.length, total);
        assert.ok(tasks.every((task) => task.state === "completed" || task.state === "cancelled"));

        const expected = new Map<string, Record<TaskState, number>>();
        for (const task of tasks) {
          const counts = expected.get(task.queue) ?? Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
          counts[task.state]++;
          expected.set(task.queue, counts);
        }
        assert.deepEqual(new Map((await store.queueStats()).map((q) => [q.queue, q.counts])), expected);
        const shards = await client.query(`SELECT count(DISTINCT shard)::int AS n FROM "${store.schema}".queue_counts`);
        assert.ok(shards.rows[0].n > 1, "connections counted in shards of their own");

        const events = await store.eventList({ after: 0, limit: 100_000 });
        assert.deepEqual(events.map((e) => e.offset), Array.from({ length: events.length }, (_, i) => i + 1));
        assert.equal(await store.eventLastOffset(), events.length);
        for (const task of tasks) {
          const own = events.filter((e) => e.taskId === task.id);
          assert.deepEqual(await store.eventList({ after: 0, limit: 100, taskId: task.id }), own, `history of task ${task.id}`);
          const types = own.map((e) => e.type);
          assert.deepEqual(types.slice(0, 2), ["task.created", "task.started"]);
          assert.equal(types.at(-1), task.state === "completed" ? "task.completed" : "task.cancelled");
          assert.equal(types.includes("task.retrying"), retried.has(task.id));
        }
      } finally {
        await client.end();
        await store.close();
      }
    });
  });
}

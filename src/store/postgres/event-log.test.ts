/**
 * The PostgreSQL event log is gap-free, and never numbers an event behind a reader's cursor, beyond what the
 * conformance suite can show with one writer at a time.
 *
 * The trap: with a sequence (bigserial), offsets are handed out when a transaction asks, not when it commits. A
 * reader tailing `offset > cursor` sees offset 2 committed while offset 1 is still in flight, moves its cursor to
 * 2, and never sees 1. The driver's writers take no offset at all: the sequencer, which readers run before they
 * read, numbers the committed log rows that have none, after every offset given before, and in the order of
 * their WAL insert positions among the rows it finds together (docs/event-log.md). So writers never
 * wait for each other, a transaction left open holds back nothing but its own events, which come after whatever
 * committed meanwhile, and a transaction that waited for another's row lock comes after it.
 *
 * Some writes here run the driver's own statements inside hand-made transactions, with random delays before
 * and after the statement (the delay after it stands for a slow commit, the dangerous case), and some of those
 * transactions roll back. Stragglers keep a transaction open for a while as others commit; sequencers run at
 * once from many connections; and transactions, of Conveyor's or not, stay open while others write and read.
 *
 * The same statements keep the counts per queue and state (queue_counts, in shards) and each task's list of log
 * rows (event_refs): the last test has many connections change them at once.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, test } from "node:test";
import pg from "pg";
import { TASK_STATES, type TaskState } from "../../core/states.ts";
import type { LogEvent } from "../../core/task.ts";
import type { TaskInsert } from "../store.ts";
import { PostgresStore } from "./postgres-store.ts";
import { loadStatements } from "./statements.ts";
import { dropSchema, freshSchema, postgresSuite, postgresUrl } from "../../../test/support/postgres.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");
const WRITERS = 8;
const TRANSITIONS_PER_WRITER = 200;

function taskInput(queue: string): TaskInsert {
  return {
    queue,
    type: "t",
    data: null,
    priority: 0,
    maxAttempts: 3,
    runAt: T0,
    key: null,
    timeoutMs: null,
    backoffMs: null,
  };
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
        assert.deepEqual(
          first.rows.map((r) => r.id),
          [2],
        );
        await a.query("COMMIT");
        const next = await reader.query(`SELECT id::int FROM "${schema}".log WHERE id > 2 ORDER BY id`);
        assert.deepEqual(next.rows, [], "with its cursor at 2, the reader never sees id 1");
      } finally {
        await Promise.all([a.end(), b.end(), reader.end()]);
      }
    });

    test("writers never wait for each other; what commits is listed at once, and an open writer's events come after it", async () => {
      const store = await openStore("eventlog_order");
      const progress = loadStatements(store.schema).get("taskProgress")!;
      const a = await connect();
      /** Progress `percent` of task `id`: in an open transaction of `client`, or through the store (autocommit). */
      const report = (id: number, percent: number, client?: pg.Client) =>
        client === undefined
          ? store.taskProgress({ id, attempt: 1, progress: { percent }, now: T0 })
          : client.query(progress, [id, 1, JSON.stringify({ percent }), T0]);
      const listed = async (after: number) =>
        (await store.eventList({ after, limit: 10 })).map((e) => [e.offset, e.taskId, e.data]);
      try {
        await store.taskInsertMany({ now: T0, tasks: [taskInput("q"), taskInput("q")] });
        const [one, two] = (await store.taskClaim({ queue: "q", types: ["t"], node: "n", limit: 2, now: T0 })).map(
          (t) => t.id,
        );
        let cursor = await store.eventLastOffset();

        // a writes first and stays open; the store writes after it and commits at once, without waiting for a.
        await a.query("BEGIN");
        await report(one!, 1, a);
        // Were the second writer to wait for the first, this would hang until the test's timeout: a commits below.
        await report(two!, 2);
        assert.deepEqual(
          await listed(cursor),
          [[cursor + 1, two, { attempt: 1, percent: 2 }]],
          "listed at once, a still open",
        );
        assert.equal(await store.eventLastOffset(), cursor + 1);
        await a.query("COMMIT");
        assert.deepEqual(
          await listed(cursor),
          [
            [cursor + 1, two, { attempt: 1, percent: 2 }],
            [cursor + 2, one, { attempt: 1, percent: 1 }],
          ],
          "a's event comes after the one listed before a committed, though a wrote first",
        );
        cursor += 2;

        // A writer that rolls back holds nothing back while it is open, and leaves no gap.
        await a.query("BEGIN");
        await report(one!, 3, a);
        await report(two!, 4);
        assert.deepEqual(await listed(cursor), [[cursor + 1, two, { attempt: 1, percent: 4 }]]);
        await a.query("ROLLBACK");
        await report(one!, 5);
        assert.deepEqual(await listed(cursor), [
          [cursor + 1, two, { attempt: 1, percent: 4 }],
          [cursor + 2, one, { attempt: 1, percent: 5 }],
        ]);
        assert.equal(await store.eventLastOffset(), cursor + 2);
      } finally {
        await a.end();
        await store.close();
      }
    });

    test("a sequencer that waits for another's lock continues from the offsets that one gave", async () => {
      const store = await openStore("eventlog_sequencers");
      const sequencer = await connect();
      const sequence = `SELECT sequenced FROM "${store.schema}".event_sequence($1)`;
      try {
        await store.taskInsertMany({ now: T0, tasks: [taskInput("q"), taskInput("q"), taskInput("q")] });
        await store.taskClaim({ queue: "q", types: ["t"], node: "n", limit: 1, now: T0 });
        // Numbers the insert's row and holds the sequencer's lock until COMMIT.
        await sequencer.query("BEGIN");
        assert.deepEqual((await sequencer.query(sequence, [1])).rows, [{ sequenced: 1 }]);
        await store.taskClaim({ queue: "q", types: ["t"], node: "n", limit: 2, now: T0 });
        // The store's own sequencer finds the claims' rows committed, and waits for the lock.
        const read = store.eventList({ after: 0, limit: 10 });
        assert.equal(await stillPending(read, 300), true, "the second sequencer waits for the first");
        await sequencer.query("COMMIT");
        // Had it numbered from a snapshot taken before that COMMIT, it would give offsets 1.. again (or fail on the
        // unique index), and number the insert's row a second time.
        assert.deepEqual(
          (await read).map((e) => [e.offset, e.type]),
          [
            [1, "task.created"],
            [2, "task.created"],
            [3, "task.created"],
            [4, "task.started"],
            [5, "task.started"],
            [6, "task.started"],
          ],
        );
        assert.equal(await store.eventLastOffset(), 6);
      } finally {
        await sequencer.end();
        await store.close();
      }
    });

    test("many sequencers at once, in small batches, number every row once, densely, in (lsn, id) order", async () => {
      const store = await openStore("eventlog_many_sequencers", 6);
      const clients = await Promise.all(Array.from({ length: 6 }, connect));
      const ROWS = 300;
      let writing = true;
      try {
        const [task] = (
          await store.taskInsertMany({ now: T0, tasks: [taskInput("q")], startOn: { node: "n", indexes: [0] } })
        ).map((o) => o.task);
        async function writer(): Promise<void> {
          for (let i = 0; i < ROWS; i++)
            await store.taskProgress({ id: task!.id, attempt: 1, progress: { percent: i % 100 }, now: T0 });
          writing = false;
        }
        async function sequencer(client: pg.Client): Promise<void> {
          // 1 to 3 rows a call, so that batches end in the middle of what is ready.
          do {
            await client.query(`SELECT * FROM "${store.schema}".event_sequence($1)`, [
              1 + Math.floor(Math.random() * 3),
            ]);
          } while (writing);
        }
        await Promise.all([writer(), ...clients.map(sequencer)]);
        await store.eventLastOffset();
        const { rows } = await clients[0]!.query(
          `SELECT "offset"::int, count, row_number() OVER (ORDER BY lsn, id)::int AS position FROM "${store.schema}".event_log ORDER BY "offset"`,
        );
        assert.equal(rows.length, ROWS + 1);
        let next = 1;
        for (const row of rows) {
          assert.equal(row.offset, next, "dense");
          next += row.count;
        }
        assert.deepEqual(
          rows.map((r) => r.position),
          rows.map((_, i) => i + 1),
          "offsets follow (lsn, id)",
        );
      } finally {
        await Promise.all(clients.map((client) => client.end()));
        await store.close();
      }
    });

    test("a transaction left open anywhere on the server holds no one's events back; pruning leaves rows without offsets", async () => {
      const store = await openStore("eventlog_long_tx");
      const prune = loadStatements(store.schema).get("eventLogPrune")!;
      const progress = loadStatements(store.schema).get("taskProgress")!;
      const [other, writer, plain] = await Promise.all([connect(), connect(), connect()]);
      const pending = async () =>
        (await plain.query(`SELECT count(*)::int AS n FROM "${store.schema}".event_log WHERE "offset" IS NULL`)).rows[0]
          .n;
      try {
        const old = await store.taskInsertMany({ now: T0, tasks: [taskInput("q"), taskInput("q")] });
        const [first] = await store.taskClaim({ queue: "q", types: ["t"], node: "n", limit: 1, now: T0 });
        assert.equal(await store.eventLastOffset(), 3);

        // A transaction with an id, in no table of Conveyor's (it holds back the server's xmin), and a writer of
        // Conveyor's whose progress event waits in its open transaction.
        await other.query("BEGIN");
        await other.query("SELECT pg_current_xact_id()");
        await writer.query("BEGIN");
        await writer.query(progress, [first!.id, 1, JSON.stringify({ percent: 50 }), T0]);

        const [fresh] = await store.taskInsertMany({ now: T0, tasks: [taskInput("q")] });
        const claimed = await store.taskClaim({ queue: "q", types: ["t"], node: "n", limit: 5, now: T0 });
        assert.deepEqual(
          claimed.map((t) => t.id),
          [old[1]!.task.id, fresh!.task.id],
        );
        assert.deepEqual(
          await store.taskComplete({
            now: T0,
            completions: [{ id: fresh!.task.id, queue: fresh!.task.queue, attempt: 1, result: null }],
          }),
          [fresh!.task.id],
        );
        assert.deepEqual(
          (await store.eventList({ after: 3, limit: 10 })).map((e) => [e.offset, e.type, e.taskId]),
          [
            [4, "task.created", fresh!.task.id],
            [5, "task.started", old[1]!.task.id],
            [6, "task.started", fresh!.task.id],
            [7, "task.completed", fresh!.task.id],
          ],
          "listed at once, in the order they were written",
        );
        assert.equal(await store.eventLastOffset(), 7);
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10, taskId: fresh!.task.id })).map((e) => e.offset),
          [4, 6, 7],
        );

        // A committed row no reader has numbered yet: the prune statement itself passes it over, and keeps the
        // newest numbered row.
        assert.equal(
          await store.taskProgress({ id: old[1]!.task.id, attempt: 1, progress: { percent: 10 }, now: T0 }),
          true,
        );
        assert.equal(await pending(), 1);
        const later = new Date(T0.getTime() + 60_000);
        assert.equal((await plain.query(prune, [later, 100])).rowCount, 4, "every numbered row but the newest");
        assert.equal(await pending(), 1);
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10 })).map((e) => [e.offset, e.type]),
          [
            [7, "task.completed"],
            [8, "task.progress"],
          ],
        );

        await writer.query("COMMIT");
        assert.deepEqual(
          (await store.eventList({ after: 7, limit: 10 })).map((e) => [e.offset, e.type, e.taskId, e.data]),
          [
            [8, "task.progress", old[1]!.task.id, { attempt: 1, percent: 10 }],
            [9, "task.progress", first!.id, { attempt: 1, percent: 50 }],
          ],
          "the open writer's event comes once it commits, after what was listed before",
        );
        // eventPrune numbers what has committed before it prunes: the newest row stays, and so does the last offset.
        assert.equal(await store.eventPrune({ before: later, limit: 100 }), 2);
        assert.deepEqual(
          (await store.eventList({ after: 0, limit: 10 })).map((e) => e.offset),
          [9],
        );
        assert.equal(await store.eventLastOffset(), 9);
      } finally {
        await other.query("ROLLBACK").catch(() => {});
        await Promise.all([other.end(), writer.end(), plain.end()]);
        await store.close();
      }
    });

    test("a transaction that waited for another's row lock comes after it, though it began first", async () => {
      const store = await openStore("eventlog_causal");
      const statements = loadStatements(store.schema);
      const [a, b] = await Promise.all([connect(), connect()]);
      /** `b` begins first, and takes a transaction id before `a` writes, as an earlier write of its own would. */
      const beginFirst = async () => {
        await b.query("BEGIN");
        await b.query("SELECT pg_current_xact_id()");
      };
      const events = async (after: number, taskId?: number) =>
        (await store.eventList({ after, limit: 10, ...(taskId === undefined ? {} : { taskId }) })).map((e) => [
          e.offset,
          e.type,
          e.taskId,
        ]);
      try {
        // A retry (a) and a cancel (b) of the same running task: b waits for a's lock, then cancels the scheduled task.
        const [inserted] = await store.taskInsertMany({
          now: T0,
          tasks: [taskInput("q")],
          startOn: { node: "n", indexes: [0] },
        });
        const task = inserted!.task;
        let cursor = await store.eventLastOffset();
        await beginFirst();
        await a.query("BEGIN");
        const error = JSON.stringify({ name: "Error", message: "again", attempt: 1, at: T0.toISOString() });
        assert.equal(
          (await a.query(statements.get("taskFail")!, [task.id, 1, error, 10, T0, T0, T0.toISOString()])).rowCount,
          1,
        );
        const cancel = b.query(statements.get("taskCancel")!, [task.id, "enough", T0, T0.toISOString(), 10]);
        assert.equal(await stillPending(cancel, 300), true, "the cancel waits for the retry's lock on the task");
        await a.query("COMMIT");
        assert.deepEqual(
          (await cancel).rows.map((r) => [r.version, r.state]),
          [
            ["after", "cancelled"],
            ["before", "scheduled"],
          ],
        );
        await b.query("COMMIT");
        const expected = [
          [cursor + 1, "task.retrying", task.id],
          [cursor + 2, "task.cancelled", task.id],
        ];
        assert.deepEqual(await events(cursor), expected, "in the order the locks were granted");
        assert.deepEqual(await events(cursor, task.id), expected);

        // A completion (a) frees key k; an insert with k (b) waits for it, then creates a new task.
        const [keyed] = await store.taskInsertMany({
          now: T0,
          tasks: [{ ...taskInput("q"), key: "k" }],
          startOn: { node: "n", indexes: [0] },
        });
        const holder = keyed!.task;
        cursor = await store.eventLastOffset();
        await beginFirst();
        await a.query("BEGIN");
        assert.deepEqual(
          (
            await a.query(statements.get("taskComplete")!, [
              JSON.stringify([[holder.id, 1, holder.queue, null]]),
              T0,
              true,
            ])
          ).rows[0].ids,
          [holder.id],
        );
        const insert = b.query(statements.get("taskInsert")!, [
          JSON.stringify([
            [
              "q",
              "t",
              null,
              0,
              3,
              T0.getTime(),
              "k",
              null,
              null,
              false,
              { type: "t", state: "queued", runAt: T0.toISOString() },
            ],
          ]),
          T0,
          null,
          null,
        ]);
        assert.equal(await stillPending(insert, 300), true, "the insert waits for the completion's hold on the key");
        await a.query("COMMIT");
        const created = ((await insert).rows[0].rows as [number][]).map(([id]) => Number(id));
        assert.equal(created.length, 1, "the key was free again");
        await b.query("COMMIT");
        assert.deepEqual(await events(cursor), [
          [cursor + 1, "task.completed", holder.id],
          [cursor + 2, "task.created", created[0]],
        ]);
      } finally {
        await Promise.all([a.query("ROLLBACK").catch(() => {}), b.query("ROLLBACK").catch(() => {})]);
        await Promise.all([a.end(), b.end()]);
        await store.close();
      }
    });

    test(`${WRITERS} concurrent writers, ${TRANSITIONS_PER_WRITER} transitions each, and a straggler: a tailing reader sees every offset once, in order`, async () => {
      const store = await openStore("eventlog_tail", WRITERS + 3);
      const progress = loadStatements(store.schema).get("taskProgress")!;
      const clients = await Promise.all(Array.from({ length: WRITERS + 1 }, connect));
      const STRAGGLES = 3;
      const HOLD_MS = 300;
      /** The writers' events, and the straggler's: created, started, a progress per committed straggle, completed. */
      const total = WRITERS * TRANSITIONS_PER_WRITER + 3 + STRAGGLES - 1;
      let writersDone = false;
      let stopped = false;
      let rolledBack = 0;
      /** Taken by each progress statement of the writers just before it is sent, and recorded in its event. */
      let tickets = 0;
      /**
       * Per straggle: the last ticket taken when its statement had run, the last offset given just before it ended,
       * the last ticket taken when it had ended, and whether it committed.
       */
      const straggles: { ticketsBefore: number; givenBefore: number; ticketsAfter: number; committed: boolean }[] = [];

      /** created + started + progress... + completed = TRANSITIONS_PER_WRITER committed events for one task. */
      async function writer(index: number): Promise<number> {
        const client = clients[index]!;
        const queue = `w${index}`;
        await store.taskInsertMany({ now: T0, tasks: [taskInput(queue)] });
        const [task] = await store.taskClaim({ queue, types: ["t"], node: `n${index}`, limit: 1, now: T0 });
        assert.ok(task);
        for (let step = 1; step <= TRANSITIONS_PER_WRITER - 3; ) {
          if (Math.random() < 0.5) {
            const data = { percent: step % 100, ticket: ++tickets };
            assert.equal(await store.taskProgress({ id: task.id, attempt: 1, progress: data, now: T0 }), true);
            step++;
            continue;
          }
          await client.query("BEGIN");
          await sleep(Math.random() * 2);
          await client.query(progress, [task.id, 1, JSON.stringify({ percent: step % 100, ticket: ++tickets }), T0]);
          await sleep(Math.random() * 2); // a slow commit
          if (Math.random() < 0.1) {
            await client.query("ROLLBACK"); // its log row goes with it, before it has an offset
            rolledBack++;
          } else {
            await client.query("COMMIT");
            step++;
          }
        }
        assert.deepEqual(
          await store.taskComplete({
            now: T0,
            completions: [{ id: task.id, queue: task.queue, attempt: 1, result: null }],
          }),
          [task.id],
        );
        return task.id;
      }

      /**
       * Writes a progress event and keeps its transaction open while the writers commit theirs (and the reader
       * lists them); the last time it rolls back.
       */
      async function straggler(): Promise<number> {
        const client = clients[WRITERS]!;
        const [outcome] = await store.taskInsertMany({
          now: T0,
          tasks: [taskInput("straggler")],
          startOn: { node: "s", indexes: [0] },
        });
        const task = outcome!.task;
        for (let round = 0; round < STRAGGLES; round++) {
          await sleep(50);
          await client.query("BEGIN");
          await client.query(progress, [task.id, 1, JSON.stringify({ percent: round, straggle: round }), T0]);
          const ticketsBefore = tickets;
          await sleep(HOLD_MS);
          const givenBefore = await store.eventLastOffset();
          const committed = round < STRAGGLES - 1;
          await client.query(committed ? "COMMIT" : "ROLLBACK");
          straggles.push({ ticketsBefore, givenBefore, ticketsAfter: tickets, committed });
        }
        assert.deepEqual(
          await store.taskComplete({
            now: T0,
            completions: [{ id: task.id, queue: task.queue, attempt: 1, result: null }],
          }),
          [task.id],
        );
        return task.id;
      }

      const seen: LogEvent[] = [];
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
        const [lateId, ...ids] = await Promise.all([
          straggler(),
          ...Array.from({ length: WRITERS }, (_, i) => writer(i)),
        ]);
        writersDone = true;
        await tail;

        assert.equal(seen.length, total);
        assert.deepEqual(
          seen.map((e) => e.offset),
          Array.from({ length: total }, (_, i) => i + 1),
        );
        assert.equal(await store.eventLastOffset(), total);
        assert.equal((await store.eventList({ after: 0, limit: total + 10 })).length, total);
        for (const id of ids) {
          const types = seen.filter((e) => e.taskId === id).map((e) => e.type);
          assert.deepEqual(
            types,
            [
              "task.created",
              "task.started",
              ...Array<string>(TRANSITIONS_PER_WRITER - 3).fill("task.progress"),
              "task.completed",
            ],
            `events of task ${id} in the order they happened`,
          );
        }
        assert.ok(rolledBack > 0, "some transactions rolled back (and left no gap)");

        const late = seen.filter((e) => e.taskId === lateId);
        assert.deepEqual(
          late.map((e) => e.type),
          ["task.created", "task.started", ...Array<string>(STRAGGLES - 1).fill("task.progress"), "task.completed"],
        );
        const ticketOf = (e: LogEvent) => (e.data as { ticket?: number }).ticket;
        for (const [round, { ticketsBefore, givenBefore, ticketsAfter, committed }] of straggles.entries()) {
          const own = late.find((e) => (e.data as { straggle?: number }).straggle === round);
          assert.equal(own !== undefined, committed, `straggle ${round} is listed if and only if it committed`);
          const passing = seen.filter((e) => (ticketOf(e) ?? 0) > ticketsBefore && e.offset <= givenBefore);
          if (round === 0)
            assert.ok(
              passing.length > 0,
              "writers' events written while the first straggle was open were listed before it ended",
            );
          if (own === undefined) continue;
          assert.ok(
            own.offset > givenBefore,
            `straggle ${round} (offset ${own.offset}) comes after every offset given before it committed (${givenBefore}), though written earlier`,
          );
          const writtenAfter = seen.filter((e) => (ticketOf(e) ?? 0) > ticketsAfter);
          assert.ok(
            writtenAfter.every((e) => e.offset > own.offset),
            `straggle ${round} comes before every event written after it committed`,
          );
        }
        const log = await clients[0]!.query(
          `SELECT count(*)::int AS rows, sum(count)::int AS events FROM "${store.schema}".event_log`,
        );
        assert.deepEqual(
          log.rows[0],
          { rows: total - 1, events: total },
          "one log row per committed statement (the straggler's insert holds two events)",
        );
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
            now: T0,
            tasks: Array.from({ length: TASKS_PER_BATCH }, (_, k) =>
              taskInput(queues[(index + batch + k) % queues.length]!),
            ),
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
              completions.push({ id: task.id, queue: task.queue, attempt: task.attempt, result: null });
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
          const counts =
            expected.get(task.queue) ??
            (Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>);
          counts[task.state]++;
          expected.set(task.queue, counts);
        }
        assert.deepEqual(new Map((await store.queueStats()).map((q) => [q.queue, q.counts])), expected);
        const shards = await client.query(`SELECT count(DISTINCT shard)::int AS n FROM "${store.schema}".queue_counts`);
        assert.ok(shards.rows[0].n > 1, "connections counted in shards of their own");

        const events = await store.eventList({ after: 0, limit: 100_000 });
        assert.deepEqual(
          events.map((e) => e.offset),
          Array.from({ length: events.length }, (_, i) => i + 1),
        );
        assert.equal(await store.eventLastOffset(), events.length);
        for (const task of tasks) {
          const own = events.filter((e) => e.taskId === task.id);
          assert.deepEqual(
            await store.eventList({ after: 0, limit: 100, taskId: task.id }),
            own,
            `history of task ${task.id}`,
          );
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

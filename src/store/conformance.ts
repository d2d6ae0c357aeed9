/**
 * The store conformance suite: one list of behaviours every Store driver must show, run by each driver's own
 * test file (`describeStoreConformance("sqlite", factory)`). It talks to the Store interface only, so the
 * same cases hold the SQLite and the PostgreSQL drivers to the same contract.
 *
 * `makeStore` must return a fresh, migrated, empty store each time it is called, and two stores it returns
 * must not share data (a PostgreSQL factory gives each one its own schema or database).
 * Time is never read from the clock: every operation gets an explicit `now` derived from T0.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConflictError, type ErrorRecord } from "../core/errors.ts";
import { emptyCounts, type TaskState } from "../core/states.ts";
import { MAX_ERROR_HISTORY, type Json, type Task, type TaskEventType } from "../core/task.ts";
import type { ScheduleInput, NodeRecord, QueueStats, Store, TaskCompletion, TaskInsert } from "./store.ts";

/** A fixed base time, far from the real clock, so a driver that reads the clock instead of `now` shows it. */
const T0 = new Date("2030-01-01T00:00:00.000Z");
/** T0 plus `seconds`. */
function at(seconds: number): Date {
  return new Date(T0.getTime() + seconds * 1000);
}

function taskInput(partial: Partial<TaskInsert> = {}): TaskInsert {
  return {
    queue: "default",
    type: "t",
    data: null,
    priority: 0,
    maxAttempts: 3,
    runAt: T0,
    key: null,
    timeoutMs: null,
    backoffMs: null,
    ...partial,
  };
}

/** Insert one task that must be new; returns it. */
async function insert(store: Store, partial: Partial<TaskInsert> = {}, now: Date = T0): Promise<Task> {
  const outcomes = await store.taskInsertMany({ tasks: [taskInput(partial)], now });
  assert.equal(outcomes.length, 1);
  assert.equal(outcomes[0]!.created, true);
  return outcomes[0]!.task;
}

/** Insert one task in its own queue and claim it; returns the running task. */
async function running(
  store: Store,
  partial: Partial<TaskInsert> & { queue: string },
  node = "n1",
  now: Date = at(1),
): Promise<Task> {
  const task = await insert(store, partial);
  const claimed = await store.taskClaim({ queue: partial.queue, types: [partial.type ?? "t"], node, limit: 1, now });
  assert.deepEqual(
    claimed.map((t) => t.id),
    [task.id],
    "the helper's queue must hold only this task",
  );
  return claimed[0]!;
}

async function mustGet(store: Store, id: number): Promise<Task> {
  const task = await store.taskGet({ id });
  assert.ok(task, `task ${id} exists`);
  return task;
}

async function allTasks(store: Store): Promise<Task[]> {
  return store.taskList({ limit: 10_000, order: "asc" });
}

function sortedIds(tasks: { id: number }[]): number[] {
  return tasks.map((t) => t.id).sort((a, b) => a - b);
}

function errorRecord(message: string, attempt: number, when: Date): ErrorRecord {
  return {
    name: "Error",
    message,
    stack: `Error: ${message}\n    at handler (task.ts:1:1)`,
    attempt,
    at: when.toISOString(),
  };
}

async function eventTypes(store: Store, taskId?: number): Promise<TaskEventType[]> {
  const events = await store.eventList(
    taskId === undefined ? { after: 0, limit: 10_000 } : { after: 0, limit: 10_000, taskId },
  );
  return events.map((e) => e.type);
}

export function describeStoreConformance(name: string, makeStore: () => Promise<Store>): void {
  /** A test with a fresh store, closed afterwards whatever happens. */
  function storeTest(title: string, body: (store: Store) => Promise<void>): void {
    test(title, async () => {
      const store = await makeStore();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });
  }

  describe(`store conformance: ${name}`, () => {
    describe("store", () => {
      storeTest("reports its capabilities", async (store) => {
        assert.equal(typeof store.capabilities.driver, "string");
        assert.ok(store.capabilities.driver.length > 0);
        assert.equal(typeof store.capabilities.multiHost, "boolean");
        assert.equal(typeof store.capabilities.notifications, "boolean");
      });

      storeTest("migrate is idempotent and migrationStatus lists every migration as applied", async (store) => {
        assert.deepEqual(await store.migrate(), { applied: [] });
        const concurrent = await Promise.all([store.migrate(), store.migrate()]);
        assert.deepEqual(concurrent, [{ applied: [] }, { applied: [] }]);
        const status = await store.migrationStatus();
        assert.ok(status.length > 0, "at least one migration");
        for (const m of status) assert.equal(m.applied, true, `${m.name} applied`);
        assert.equal(new Set(status.map((m) => m.name)).size, status.length, "migration names are unique");
      });

      storeTest("ping answers", async (store) => {
        await store.ping();
      });

      test("two stores from the factory do not share data", async () => {
        const a = await makeStore();
        try {
          const b = await makeStore();
          try {
            await insert(a, { key: "k" });
            assert.equal((await allTasks(a)).length, 1);
            assert.equal((await allTasks(b)).length, 0);
            assert.equal(await b.eventLastOffset(), 0);
            // The same key is free in the other store.
            await insert(b, { key: "k" });
          } finally {
            await b.close();
          }
        } finally {
          await a.close();
        }
      });
    });

    describe("taskInsertMany", () => {
      storeTest("keeps the given fields and fills the rest", async (store) => {
        const input = taskInput({
          queue: "emails",
          type: "send",
          data: { to: "a@example.com" },
          priority: 7,
          maxAttempts: 5,
          runAt: at(-10),
          key: "k1",
          timeoutMs: 30_000,
          backoffMs: 250,
        });
        const [outcome] = await store.taskInsertMany({ tasks: [input], now: T0 });
        assert.ok(outcome);
        assert.equal(outcome.created, true);
        const task = outcome.task;
        assert.ok(Number.isSafeInteger(task.id) && task.id > 0, `id ${task.id} is a positive safe integer`);
        assert.deepEqual(task, {
          id: task.id,
          queue: "emails",
          type: "send",
          data: { to: "a@example.com" },
          priority: 7,
          state: "queued",
          attempt: 0,
          maxAttempts: 5,
          stalls: 0,
          runAt: at(-10),
          key: "k1",
          progress: null,
          result: null,
          error: null,
          errors: [],
          timeoutMs: 30_000,
          backoffMs: 250,
          node: null,
          createdAt: T0,
          startedAt: null,
          finishedAt: null,
        } satisfies Task);
        assert.deepEqual(await store.taskGet({ id: task.id }), task, "taskGet returns what insert returned");
      });

      storeTest("runAt <= now is queued, runAt > now is scheduled", async (store) => {
        const outcomes = await store.taskInsertMany({
          now: T0,
          tasks: [taskInput({ runAt: at(-1) }), taskInput({ runAt: T0 }), taskInput({ runAt: at(1) })],
        });
        assert.deepEqual(
          outcomes.map((o) => o.task.state),
          ["queued", "queued", "scheduled"],
        );
        assert.deepEqual(
          outcomes.map((o) => o.task.attempt),
          [0, 0, 0],
        );
        assert.deepEqual((await mustGet(store, outcomes[2]!.task.id)).runAt, at(1));
      });

      storeTest("ids are increasing safe integers, in input order and across batches", async (store) => {
        const first = await store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput(), taskInput()] });
        const second = await store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput()] });
        const ids = [...first, ...second].map((o) => o.task.id);
        for (const id of ids) assert.ok(Number.isSafeInteger(id), `${id} is a safe integer`);
        for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `ids increase: ${ids.join(", ")}`);
        assert.ok([...first, ...second].every((o) => o.created));
      });

      storeTest(
        "a large batch (drivers insert it in chunks) returns each task as the store keeps it",
        async (store) => {
          // 123 tasks: chunks of any size up to 100 and a remainder; fields differ per task so a misaligned id shows.
          const inputs = Array.from({ length: 123 }, (_, i) =>
            taskInput({
              queue: i % 3 === 0 ? "a" : "b",
              type: `t${i % 4}`,
              data: { i },
              priority: i % 5,
              maxAttempts: 1 + (i % 7),
              runAt: at(i % 10 === 0 ? 5 : -1),
              timeoutMs: i % 2 === 0 ? null : 1000 + i,
              backoffMs: i % 3 === 0 ? 10 + i : null,
            }),
          );
          const outcomes = await store.taskInsertMany({
            now: T0,
            tasks: inputs,
            startOn: { node: "n1", indexes: [1, 61, 122] },
          });
          assert.equal(outcomes.length, 123);
          for (let i = 1; i < outcomes.length; i++)
            assert.ok(outcomes[i]!.task.id > outcomes[i - 1]!.task.id, "ids increase in input order");
          for (const [i, { task, created }] of outcomes.entries()) {
            assert.equal(created, true);
            assert.deepEqual(task.data, { i }, `task ${task.id} holds input ${i}`);
            assert.equal(task.state, [1, 61, 122].includes(i) ? "running" : i % 10 === 0 ? "scheduled" : "queued");
            assert.deepEqual(
              await store.taskGet({ id: task.id }),
              task,
              `taskGet of input ${i} returns what insert returned`,
            );
          }
          const counts = (await store.queueStats()).map((q) => [
            q.queue,
            q.counts.scheduled,
            q.counts.queued,
            q.counts.running,
          ]);
          assert.deepEqual(counts.sort(), [
            ["a", 5, 36, 0],
            ["b", 8, 71, 3],
          ]);
        },
      );

      storeTest(
        "a batch differing only in data, and one where a single field differs, give the same tasks and events",
        async (store) => {
          // Drivers may take a shortcut for the usual batch (same queue, type, options; no key; none to start): it must
          // not show. Each field in turn differs in the last task only, so the batch falls back to the general path.
          const shape = {
            queue: "u",
            type: "tu",
            priority: 3,
            maxAttempts: 4,
            runAt: at(60),
            timeoutMs: 500,
            backoffMs: 70,
          };
          const variants: [string, Partial<TaskInsert>][] = [
            ["none", {}],
            ["queue", { queue: "u2" }],
            ["type", { type: "tu2" }],
            ["priority", { priority: 4 }],
            ["maxAttempts", { maxAttempts: 5 }],
            ["runAt", { runAt: at(61) }],
            ["timeoutMs", { timeoutMs: null }],
            ["backoffMs", { backoffMs: null }],
            ["key", { key: "ku" }],
          ];
          for (const [differs, last] of variants) {
            const inputs = Array.from({ length: 60 }, (_, i) =>
              taskInput({ ...shape, data: { i, differs }, ...(i === 59 ? last : {}) }),
            );
            const offset = await store.eventLastOffset();
            const outcomes = await store.taskInsertMany({ now: T0, tasks: inputs });
            for (let i = 1; i < outcomes.length; i++)
              assert.ok(outcomes[i]!.task.id > outcomes[i - 1]!.task.id, `${differs}: ids in input order`);
            for (const [i, { task, created }] of outcomes.entries()) {
              const input = inputs[i]!;
              assert.ok(created);
              assert.deepEqual(
                [
                  task.queue,
                  task.type,
                  task.data,
                  task.priority,
                  task.maxAttempts,
                  task.runAt,
                  task.timeoutMs,
                  task.backoffMs,
                  task.key,
                  task.state,
                ],
                [
                  input.queue,
                  input.type,
                  input.data,
                  input.priority,
                  input.maxAttempts,
                  input.runAt,
                  input.timeoutMs,
                  input.backoffMs,
                  input.key,
                  "scheduled",
                ],
                `${differs}: input ${i}`,
              );
              assert.deepEqual(await store.taskGet({ id: task.id }), task, `${differs}: taskGet of input ${i}`);
            }
            const events = await store.eventList({ after: offset, limit: 100 });
            assert.deepEqual(
              events.map((e) => [e.type, e.taskId, e.queue, e.data]),
              outcomes.map(({ task }) => [
                "task.created",
                task.id,
                task.queue,
                { type: task.type, state: "scheduled", runAt: task.runAt.toISOString() },
              ]),
              `${differs}: one task.created each`,
            );
          }
          const scheduled = (await store.queueStats()).map((q) => [q.queue, q.counts.scheduled]).sort();
          assert.deepEqual(scheduled, [
            ["u", 60 * 9 - 1],
            ["u2", 1],
          ]);
        },
      );

      storeTest("an empty batch inserts nothing", async (store) => {
        assert.deepEqual(await store.taskInsertMany({ now: T0, tasks: [] }), []);
        assert.equal((await allTasks(store)).length, 0);
      });

      storeTest("data JSON round-trips", async (store) => {
        const samples: Json[] = [
          null,
          true,
          false,
          0,
          -42,
          3.25,
          Number.MAX_SAFE_INTEGER,
          "",
          "plain",
          "unicode: héllo wörld, 日本語, emoji 🚀👍🏽, combining e\u0301, quotes \" ' and \\ backslash, newline\n",
          [],
          [1, "two", null, [3, [4]], { five: 5 }],
          {},
          { nested: { deeper: { list: [1, 2, { k: "v" }], flag: false, none: null } }, "key with spaces": "ü" },
        ];
        const outcomes = await store.taskInsertMany({ now: T0, tasks: samples.map((data) => taskInput({ data })) });
        for (const [i, sample] of samples.entries()) {
          const outcome = outcomes[i]!;
          assert.deepEqual(outcome.task.data, sample, `insert result for sample ${i}`);
          assert.deepEqual((await mustGet(store, outcome.task.id)).data, sample, `taskGet for sample ${i}`);
        }
      });
    });

    describe("uniqueness keys", () => {
      storeTest("a key held by an active task returns that task and inserts nothing", async (store) => {
        const queued = await insert(store, { key: "q", data: 1 });
        const scheduled = await insert(store, { key: "s", runAt: at(60) });
        const run = await running(store, { queue: "r", key: "r" });
        const offset = await store.eventLastOffset();
        for (const existing of [queued, scheduled, run]) {
          const [dup] = await store.taskInsertMany({ now: at(2), tasks: [taskInput({ key: existing.key, data: 2 })] });
          assert.ok(dup);
          assert.equal(dup.created, false, `key ${existing.key} is taken`);
          assert.equal(dup.task.id, existing.id);
          assert.equal(dup.task.state, existing.state);
          assert.deepEqual(dup.task.data, existing.data, "the existing task is returned unchanged");
        }
        assert.equal((await allTasks(store)).length, 3);
        assert.equal(await store.eventLastOffset(), offset, "a duplicate insert writes no event");
      });

      storeTest("the same key twice in one batch yields one task", async (store) => {
        const outcomes = await store.taskInsertMany({
          now: T0,
          tasks: [
            taskInput({ key: "k", data: "first" }),
            taskInput({ key: "k", data: "second" }),
            taskInput({ key: "other" }),
          ],
        });
        assert.equal(outcomes.length, 3, "one outcome per input");
        assert.deepEqual(
          outcomes.map((o) => o.created),
          [true, false, true],
        );
        assert.equal(outcomes[1]!.task.id, outcomes[0]!.task.id);
        assert.deepEqual(outcomes[1]!.task.data, "first");
        assert.equal((await allTasks(store)).length, 2);
        assert.deepEqual(await eventTypes(store), ["task.created", "task.created"]);
      });

      storeTest("a key is free again once its task is completed, failed or cancelled", async (store) => {
        const done = await running(store, { queue: "a", key: "done" });
        assert.deepEqual(
          await store.taskComplete({
            now: at(2),
            completions: [{ id: done.id, queue: done.queue, attempt: 1, result: null }],
          }),
          [done.id],
        );
        const failed = await running(store, { queue: "b", key: "failed" });
        assert.ok(
          await store.taskFail({
            id: failed.id,
            attempt: 1,
            error: errorRecord("x", 1, at(2)),
            retryAt: null,
            now: at(2),
          }),
        );
        const cancelled = await insert(store, { key: "cancelled" });
        assert.equal((await store.taskCancel({ id: cancelled.id, reason: "test", now: at(2) }))?.cancelled, true);

        for (const old of [done, failed, cancelled]) {
          const fresh = await insert(store, { key: old.key }, at(3));
          assert.notEqual(fresh.id, old.id, `key ${old.key} makes a new task`);
        }
        assert.equal((await allTasks(store)).length, 6);
      });

      storeTest("tasks without a key never conflict", async (store) => {
        await store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput()] });
        await insert(store);
        assert.equal((await allTasks(store)).length, 3);
      });
    });

    describe("taskGet and taskList", () => {
      storeTest("taskGet returns null for an unknown id", async (store) => {
        assert.equal(await store.taskGet({ id: 987_654 }), null);
      });

      storeTest("taskList filters, orders and pages by id", async (store) => {
        const a1 = await insert(store, { queue: "a", type: "x" });
        const a2 = await insert(store, { queue: "a", type: "y", key: "key-a2" });
        const b1 = await insert(store, { queue: "b", type: "x", runAt: at(60) });
        const b2 = await insert(store, { queue: "b", type: "y" });
        const ids = (tasks: Task[]) => tasks.map((t) => t.id);

        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc" })), [a1.id, a2.id, b1.id, b2.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "desc" })), [b2.id, b1.id, a2.id, a1.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 2, order: "asc" })), [a1.id, a2.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", after: a2.id })), [b1.id, b2.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "desc", after: b1.id })), [a2.id, a1.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", queue: "b" })), [b1.id, b2.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", type: "x" })), [a1.id, b1.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", key: "key-a2" })), [a2.id]);
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", states: ["scheduled"] })), [b1.id]);
        assert.deepEqual(
          ids(
            await store.taskList({ limit: 10, order: "asc", states: ["scheduled", "queued"], queue: "b", type: "y" }),
          ),
          [b2.id],
        );
        assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", states: ["running"] })), []);
      });
    });

    describe("taskInsertMany with startOn", () => {
      storeTest(
        "the named inputs start at once on the node: running, attempt 1, created and started events",
        async (store) => {
          const outcomes = await store.taskInsertMany({
            now: at(1),
            tasks: [taskInput({ queue: "a" }), taskInput({ queue: "a" }), taskInput({ queue: "b", data: { x: 1 } })],
            startOn: { node: "n1", indexes: [0, 2] },
          });
          const [first, second, third] = outcomes.map((o) => o.task);
          for (const task of [first!, third!]) {
            assert.deepEqual(
              { state: task.state, attempt: task.attempt, node: task.node, startedAt: task.startedAt },
              { state: "running", attempt: 1, node: "n1", startedAt: at(1) },
            );
            assert.deepEqual(await mustGet(store, task.id), task, "the returned task is what the store holds");
          }
          assert.equal(second!.state, "queued");
          assert.deepEqual(await eventTypes(store, first!.id), ["task.created", "task.started"]);
          const stats = new Map((await store.queueStats()).map((q) => [q.queue, q.counts]));
          assert.deepEqual(stats.get("a"), { ...emptyCounts(), running: 1, queued: 1 });
          assert.deepEqual(stats.get("b"), { ...emptyCounts(), running: 1 });
          // A started task is a claimed one: its node completes it, and nobody claims it again.
          assert.deepEqual(
            await store
              .taskClaim({ queue: "a", types: ["t"], node: "n2", limit: 10, now: at(2) })
              .then((ts) => ts.map((t) => t.id)),
            [second!.id],
          );
          assert.deepEqual(
            await store.taskComplete({
              now: at(3),
              completions: [{ id: first!.id, queue: first!.queue, attempt: 1, result: "ok" }],
            }),
            [first!.id],
          );
        },
      );

      storeTest("a future, duplicate or paused-queue input does not start", async (store) => {
        const holder = await insert(store, { queue: "a", key: "k" });
        await store.queueSetPaused({ queue: "p", paused: true, now: T0 });
        const outcomes = await store.taskInsertMany({
          now: at(1),
          tasks: [
            taskInput({ queue: "a", runAt: at(60) }),
            taskInput({ queue: "a", key: "k" }),
            taskInput({ queue: "p" }),
          ],
          startOn: { node: "n1", indexes: [0, 1, 2] },
        });
        assert.deepEqual(
          outcomes.map((o) => [o.created, o.task.state]),
          [
            [true, "scheduled"],
            [false, "queued"],
            [true, "queued"],
          ],
        );
        assert.equal(outcomes[1]!.task.id, holder.id);
        assert.equal((await mustGet(store, holder.id)).attempt, 0);
      });
    });

    describe("taskClaim", () => {
      storeTest("claims by priority (higher first) then id", async (store) => {
        const outcomes = await store.taskInsertMany({
          now: T0,
          tasks: [0, 5, 0, 10, 5].map((priority) => taskInput({ priority })),
        });
        const [p0a, p5a, p0b, p10, p5b] = outcomes.map((o) => o.task.id);
        const order: number[] = [];
        for (let i = 0; i < 5; i++) {
          const claimed = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 1, now: at(1) });
          assert.equal(claimed.length, 1);
          order.push(claimed[0]!.id);
        }
        assert.deepEqual(order, [p10, p5a, p5b, p0a, p0b]);
      });

      storeTest("a batch takes the first `limit` tasks in claim order", async (store) => {
        const outcomes = await store.taskInsertMany({
          now: T0,
          tasks: [0, 5, 0, 10, 5].map((priority) => taskInput({ priority })),
        });
        const [p0a, p5a, p0b, p10, p5b] = outcomes.map((o) => o.task.id);
        const claim = () => store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: at(1) });
        assert.deepEqual(
          sortedIds(await claim()),
          [p5a!, p10!].sort((a, b) => a - b),
        );
        assert.deepEqual(
          sortedIds(await claim()),
          [p0a!, p5b!].sort((a, b) => a - b),
        );
        assert.deepEqual(sortedIds(await claim()), [p0b]);
        assert.deepEqual(await claim(), []);
      });

      storeTest("sets running, node, attempt + 1 and startedAt", async (store) => {
        const task = await insert(store, { maxAttempts: 4 });
        const [claimed] = await store.taskClaim({
          queue: "default",
          types: ["t"],
          node: "node-a",
          limit: 10,
          now: at(5),
        });
        assert.ok(claimed);
        assert.equal(claimed.id, task.id);
        assert.equal(claimed.state, "running");
        assert.equal(claimed.node, "node-a");
        assert.equal(claimed.attempt, 1);
        assert.deepEqual(claimed.startedAt, at(5));
        assert.equal(claimed.finishedAt, null);
        assert.deepEqual(await mustGet(store, task.id), claimed, "the claim is stored as returned");
      });

      storeTest("only the given queue and only the given types", async (store) => {
        const wanted = await insert(store, { queue: "q1", type: "a" });
        const otherType = await insert(store, { queue: "q1", type: "c" });
        const otherQueue = await insert(store, { queue: "q2", type: "a" });
        const secondType = await insert(store, { queue: "q1", type: "b" });
        const claimed = await store.taskClaim({ queue: "q1", types: ["a", "b"], node: "n1", limit: 10, now: at(1) });
        assert.deepEqual(sortedIds(claimed), [wanted.id, secondType.id]);
        assert.equal((await mustGet(store, otherType.id)).state, "queued");
        assert.equal((await mustGet(store, otherQueue.id)).state, "queued");
      });

      storeTest("never claims scheduled tasks until they are promoted", async (store) => {
        const later = await insert(store, { runAt: at(60) });
        const claim = (now: Date) => store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 10, now });
        assert.deepEqual(await claim(at(1)), []);
        // Even once due, a scheduled task waits for promotion.
        assert.deepEqual(await claim(at(120)), []);
        assert.equal((await mustGet(store, later.id)).state, "scheduled");
        await store.taskPromote({ now: at(120), limit: 10 });
        assert.deepEqual(sortedIds(await claim(at(121))), [later.id]);
      });

      storeTest("two successive claims never return the same task", async (store) => {
        await store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput(), taskInput(), taskInput()] });
        const claim = () => store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: at(1) });
        const first = await claim();
        const second = await claim();
        assert.equal(first.length, 2);
        assert.equal(second.length, 2);
        assert.equal(new Set([...sortedIds(first), ...sortedIds(second)]).size, 4);
        assert.deepEqual(await claim(), []);
      });

      storeTest("a paused queue gives nothing until resumed", async (store) => {
        const task = await insert(store, { queue: "p" });
        const other = await insert(store, { queue: "o" });
        await store.queueSetPaused({ queue: "p", paused: true, now: at(1) });
        assert.deepEqual(await store.taskClaim({ queue: "p", types: ["t"], node: "n1", limit: 10, now: at(2) }), []);
        assert.deepEqual(
          sortedIds(await store.taskClaim({ queue: "o", types: ["t"], node: "n1", limit: 10, now: at(2) })),
          [other.id],
        );
        await store.queueSetPaused({ queue: "p", paused: false, now: at(3) });
        assert.deepEqual(
          sortedIds(await store.taskClaim({ queue: "p", types: ["t"], node: "n1", limit: 10, now: at(4) })),
          [task.id],
        );
      });

      storeTest("a queue paused before it has tasks stays paused", async (store) => {
        await store.queueSetPaused({ queue: "early", paused: true, now: T0 });
        await insert(store, { queue: "early" }, at(1));
        assert.deepEqual(
          await store.taskClaim({ queue: "early", types: ["t"], node: "n1", limit: 10, now: at(2) }),
          [],
        );
      });

      storeTest("20 concurrent claims over 50 tasks claim each task exactly once", async (store) => {
        const outcomes = await store.taskInsertMany({
          now: T0,
          tasks: Array.from({ length: 50 }, (_, i) => taskInput({ data: i })),
        });
        const batches = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.taskClaim({ queue: "default", types: ["t"], node: `n${i}`, limit: 5, now: at(1) }),
          ),
        );
        const claimed = batches.flat();
        assert.equal(claimed.length, 50, "all 50 claimed");
        assert.equal(new Set(claimed.map((t) => t.id)).size, 50, "none claimed twice");
        assert.deepEqual(sortedIds(claimed), sortedIds(outcomes.map((o) => o.task)));
        for (const [i, batch] of batches.entries()) {
          assert.ok(batch.length <= 5, "limit respected");
          for (const task of batch) {
            const stored = await mustGet(store, task.id);
            assert.equal(stored.state, "running");
            assert.equal(stored.node, `n${i}`, "the stored node is the claimer's");
            assert.equal(stored.attempt, 1);
          }
        }
      });
    });

    describe("taskComplete", () => {
      storeTest("completes a running attempt and stores its result", async (store) => {
        const task = await running(store, { queue: "c" });
        const result = { ok: true, items: [1, "ü", null] };
        assert.deepEqual(
          await store.taskComplete({
            now: at(9),
            completions: [{ id: task.id, queue: task.queue, attempt: 1, result }],
          }),
          [task.id],
        );
        const done = await mustGet(store, task.id);
        assert.equal(done.state, "completed");
        assert.deepEqual(done.result, result);
        assert.deepEqual(done.finishedAt, at(9));
        assert.equal(done.attempt, 1);
      });

      storeTest("completes a batch and skips stale or non-running entries", async (store) => {
        const a = await running(store, { queue: "a" });
        const b = await running(store, { queue: "b" });
        const queued = await insert(store, { queue: "c" });
        const completed = await store.taskComplete({
          now: at(9),
          completions: [
            { id: a.id, queue: a.queue, attempt: 1, result: "a" },
            { id: b.id, queue: b.queue, attempt: 2, result: "stale" },
            { id: queued.id, queue: queued.queue, attempt: 0, result: "not running" },
            { id: 987_654, queue: "a", attempt: 1, result: "unknown" },
            { id: a.id, queue: "b", attempt: 1, result: "wrong queue" },
          ],
        });
        assert.deepEqual(completed, [a.id]);
        const staleTask = await mustGet(store, b.id);
        assert.equal(staleTask.state, "running");
        assert.equal(staleTask.result, null);
        assert.equal((await mustGet(store, queued.id)).state, "queued");
      });

      storeTest("completing twice returns the id once", async (store) => {
        const task = await running(store, { queue: "c" });
        const completion = { id: task.id, queue: task.queue, attempt: 1, result: 1 };
        assert.deepEqual(
          await store.taskComplete({ now: at(9), completions: [completion, { ...completion, result: 2 }] }),
          [task.id],
        );
        const offset = await store.eventLastOffset();
        assert.deepEqual(await store.taskComplete({ now: at(10), completions: [{ ...completion, result: 3 }] }), []);
        const done = await mustGet(store, task.id);
        assert.equal(done.result, 1, "the first result stands");
        assert.deepEqual(done.finishedAt, at(9));
        assert.equal(await store.eventLastOffset(), offset, "a stale completion writes no event");
      });

      storeTest(
        "a large batch: every entry judged on its own and in order, one event and count each",
        async (store) => {
          await store.taskInsertMany({
            now: T0,
            tasks: Array.from({ length: 130 }, () => taskInput({ queue: "big" })),
          });
          const tasks = await store.taskClaim({ queue: "big", types: ["t"], node: "n1", limit: 130, now: at(1) });
          assert.equal(tasks.length, 130);
          const offset = await store.eventLastOffset();
          // Stale entries at and around every 50th place; a task named twice, stale then with its attempt, and an
          // exact repeat, both a few places apart: whatever statements a driver splits the batch into, each entry
          // must count as if it came alone, in order.
          const stale = new Set([0, 49, 50, 55, 99, 129]);
          const completions: TaskCompletion[] = tasks.map((task, i) => ({
            id: task.id,
            queue: task.queue,
            attempt: stale.has(i) ? 2 : 1,
            result: i,
          }));
          completions.splice(58, 0, { id: tasks[55]!.id, queue: "big", attempt: 1, result: "second try" });
          completions.splice(21, 0, { id: tasks[10]!.id, queue: "big", attempt: 1, result: "repeat" });
          // What one statement per entry, in order, would do.
          const done = new Set<number>();
          const expected = completions.filter(
            (c) => c.attempt === 1 && !done.has(c.id) && done.add(c.id) !== undefined,
          );
          const completed = await store.taskComplete({ now: at(2), completions });
          assert.deepEqual(
            completed,
            expected.map((c) => c.id),
          );
          for (const { id, result } of expected) assert.deepEqual((await mustGet(store, id)).result, result);
          const [counts] = (await store.queueStats()).filter((q) => q.queue === "big").map((q) => q.counts);
          assert.deepEqual([counts!.running, counts!.completed], [5, 125]);
          const events = await store.eventList({ after: offset, limit: 1000 });
          assert.deepEqual(
            events.map((e) => [e.type, e.taskId]),
            completed.map((id) => ["task.completed", id]),
          );
        },
      );
    });

    describe("taskFail", () => {
      storeTest("with retryAt: back to scheduled at retryAt, error recorded", async (store) => {
        const task = await running(store, { queue: "f", maxAttempts: 3 });
        const error = errorRecord("boom", 1, at(2));
        const failed = await store.taskFail({ id: task.id, attempt: 1, error, retryAt: at(30), now: at(2) });
        assert.ok(failed);
        assert.equal(failed.state, "scheduled");
        assert.deepEqual(failed.runAt, at(30));
        assert.deepEqual(failed.error, error);
        assert.equal(failed.finishedAt, null);
        assert.deepEqual(await mustGet(store, task.id), failed, "the failure is stored as returned");
        assert.deepEqual(await store.taskNextRunAt(), at(30));

        // The retry runs as the next attempt, once promoted.
        assert.deepEqual(await store.taskPromote({ now: at(30), limit: 10 }), { count: 1, queues: ["f"] });
        const [retry] = await store.taskClaim({ queue: "f", types: ["t"], node: "n2", limit: 1, now: at(31) });
        assert.ok(retry);
        assert.equal(retry.attempt, 2);
        const second = errorRecord("bang", 2, at(32));
        const again = await store.taskFail({ id: task.id, attempt: 2, error: second, retryAt: at(60), now: at(32) });
        assert.ok(again);
        assert.deepEqual(again.error, second);
        // `errors` holds the history oldest first; whether it also repeats the latest is the driver's choice.
        assert.deepEqual(again.errors[0], error, "the first error is kept in the history");
      });

      storeTest("with retryAt null: failed for good", async (store) => {
        const task = await running(store, { queue: "f" });
        const error = errorRecord("fatal", 1, at(2));
        const failed = await store.taskFail({ id: task.id, attempt: 1, error, retryAt: null, now: at(2) });
        assert.ok(failed);
        assert.equal(failed.state, "failed");
        assert.deepEqual(failed.finishedAt, at(2));
        assert.deepEqual(failed.error, error);
        assert.deepEqual(await mustGet(store, task.id), failed);
        assert.equal(await store.taskNextRunAt(), null);
      });

      storeTest("a stale attempt or a non-running task returns null and changes nothing", async (store) => {
        const task = await running(store, { queue: "f" });
        const queued = await insert(store, { queue: "g" });
        const before = await mustGet(store, task.id);
        const offset = await store.eventLastOffset();
        const error = errorRecord("late", 7, at(2));
        assert.equal(await store.taskFail({ id: task.id, attempt: 7, error, retryAt: null, now: at(2) }), null);
        assert.equal(await store.taskFail({ id: task.id, attempt: 0, error, retryAt: at(5), now: at(2) }), null);
        assert.equal(await store.taskFail({ id: queued.id, attempt: 0, error, retryAt: null, now: at(2) }), null);
        assert.equal(await store.taskFail({ id: 987_654, attempt: 1, error, retryAt: null, now: at(2) }), null);
        assert.deepEqual(await mustGet(store, task.id), before);
        assert.deepEqual(await mustGet(store, queued.id), queued);
        assert.equal(await store.eventLastOffset(), offset, "a stale failure writes no event");
      });

      storeTest(`the error history keeps at most ${MAX_ERROR_HISTORY} entries, dropping the oldest`, async (store) => {
        const failures = MAX_ERROR_HISTORY + 5;
        const task = await insert(store, { queue: "h", maxAttempts: failures + 5 });
        let last: Task | null = null;
        for (let attempt = 1; attempt <= failures; attempt++) {
          const now = at(attempt * 10);
          await store.taskPromote({ now, limit: 10 });
          const [claimed] = await store.taskClaim({ queue: "h", types: ["t"], node: "n1", limit: 1, now });
          assert.ok(claimed, `claim for attempt ${attempt}`);
          assert.equal(claimed.attempt, attempt);
          last = await store.taskFail({
            id: task.id,
            attempt,
            error: errorRecord(`e${attempt}`, attempt, now),
            retryAt: now,
            now,
          });
          assert.ok(last);
        }
        assert.ok(last);
        assert.equal(last.error?.message, `e${failures}`);
        assert.equal(last.errors.length, MAX_ERROR_HISTORY);
        // Oldest first and contiguous, ending with the previous error or the latest one (see the note above).
        const attempts = last.errors.map((e) => e.attempt);
        const end = attempts.at(-1)!;
        assert.ok(end === failures || end === failures - 1, `history ends at attempt ${end}`);
        assert.deepEqual(
          attempts,
          Array.from({ length: MAX_ERROR_HISTORY }, (_, i) => end - MAX_ERROR_HISTORY + 1 + i),
        );
        assert.deepEqual(
          last.errors.map((e) => e.message),
          attempts.map((a) => `e${a}`),
        );
      });
    });

    describe("taskPromote and taskNextRunAt", () => {
      storeTest("promotes due scheduled tasks only, and names their queues", async (store) => {
        const a = await insert(store, { queue: "a", runAt: at(10) });
        const b = await insert(store, { queue: "b", runAt: at(20) });
        const c = await insert(store, { queue: "c", runAt: at(100) });
        const queued = await insert(store, { queue: "d" });
        const result = await store.taskPromote({ now: at(30), limit: 100 });
        assert.equal(result.count, 2);
        assert.deepEqual([...result.queues].sort(), ["a", "b"]);
        assert.equal((await mustGet(store, a.id)).state, "queued");
        assert.equal((await mustGet(store, b.id)).state, "queued");
        assert.equal((await mustGet(store, c.id)).state, "scheduled");
        assert.deepEqual(await mustGet(store, queued.id), queued);
        assert.deepEqual(await store.taskPromote({ now: at(30), limit: 100 }), { count: 0, queues: [] });
      });

      storeTest("promotes at most `limit` tasks per call", async (store) => {
        await store.taskInsertMany({ now: T0, tasks: [1, 2, 3].map((s) => taskInput({ runAt: at(s) })) });
        assert.equal((await store.taskPromote({ now: at(10), limit: 2 })).count, 2);
        assert.equal((await store.taskPromote({ now: at(10), limit: 2 })).count, 1);
        assert.equal((await store.taskList({ limit: 10, order: "asc", states: ["queued"] })).length, 3);
      });

      storeTest("taskNextRunAt is the earliest scheduled runAt, or null", async (store) => {
        assert.equal(await store.taskNextRunAt(), null);
        await insert(store, { runAt: at(-5) }); // queued: not scheduled, does not count
        assert.equal(await store.taskNextRunAt(), null);
        await insert(store, { runAt: at(100) });
        const soon = await insert(store, { runAt: at(50) });
        assert.deepEqual(await store.taskNextRunAt(), at(50));
        await store.taskPromote({ now: at(60), limit: 10 });
        assert.deepEqual(await store.taskNextRunAt(), at(100));
        assert.equal((await mustGet(store, soon.id)).state, "queued");
      });
    });

    describe("taskCancel", () => {
      storeTest("cancels queued, scheduled and running tasks", async (store) => {
        const queued = await insert(store, { queue: "q" });
        const scheduled = await insert(store, { queue: "s", runAt: at(60) });
        const run = await running(store, { queue: "r" });
        for (const task of [queued, scheduled, run]) {
          const outcome = await store.taskCancel({ id: task.id, reason: "user", now: at(5) });
          assert.ok(outcome);
          assert.equal(outcome.cancelled, true);
          assert.equal(outcome.previousState, task.state);
          assert.equal(outcome.task.id, task.id);
          assert.equal(outcome.task.state, "cancelled");
          assert.deepEqual(outcome.task.finishedAt, at(5));
          assert.equal((await mustGet(store, task.id)).state, "cancelled");
        }
        assert.equal(await store.taskNextRunAt(), null, "a cancelled scheduled task is no longer due");
        assert.deepEqual(await store.taskPromote({ now: at(120), limit: 10 }), { count: 0, queues: [] });
      });

      storeTest("a final task is left as it is", async (store) => {
        const done = await running(store, { queue: "c" });
        await store.taskComplete({
          now: at(2),
          completions: [{ id: done.id, queue: done.queue, attempt: 1, result: "r" }],
        });
        const failed = await running(store, { queue: "f" });
        await store.taskFail({
          id: failed.id,
          attempt: 1,
          error: errorRecord("x", 1, at(2)),
          retryAt: null,
          now: at(2),
        });
        const cancelled = await insert(store, { queue: "x" });
        await store.taskCancel({ id: cancelled.id, reason: "first", now: at(2) });

        for (const [id, state] of [
          [done.id, "completed"],
          [failed.id, "failed"],
          [cancelled.id, "cancelled"],
        ] as const) {
          const before = await mustGet(store, id);
          const offset = await store.eventLastOffset();
          const outcome = await store.taskCancel({ id, reason: "again", now: at(9) });
          assert.ok(outcome);
          assert.equal(outcome.cancelled, false);
          assert.equal(outcome.previousState, state);
          assert.equal(outcome.task.state, state);
          assert.deepEqual(await mustGet(store, id), before, `${state} task unchanged`);
          assert.equal(await store.eventLastOffset(), offset, `no event for cancelling a ${state} task`);
        }
      });

      storeTest("an unknown id gives null", async (store) => {
        assert.equal(await store.taskCancel({ id: 987_654, reason: "x", now: T0 }), null);
      });

      storeTest("after cancelling a running task its attempt is stale", async (store) => {
        const task = await running(store, { queue: "r" });
        await store.taskCancel({ id: task.id, reason: "stop", now: at(2) });
        const offset = await store.eventLastOffset();
        assert.deepEqual(
          await store.taskComplete({
            now: at(3),
            completions: [{ id: task.id, queue: task.queue, attempt: 1, result: "late" }],
          }),
          [],
        );
        assert.equal(
          await store.taskProgress({ id: task.id, attempt: 1, progress: { percent: 50 }, now: at(3) }),
          false,
        );
        assert.equal(
          await store.taskFail({
            id: task.id,
            attempt: 1,
            error: errorRecord("late", 1, at(3)),
            retryAt: at(4),
            now: at(3),
          }),
          null,
        );
        const after = await mustGet(store, task.id);
        assert.equal(after.state, "cancelled");
        assert.equal(after.result, null, "the late result is discarded");
        assert.equal(await store.eventLastOffset(), offset, "discarded outcomes write no event");
      });
    });

    describe("taskRerun", () => {
      storeTest("runs a failed or cancelled task again from attempt 0", async (store) => {
        const failed = await running(store, { queue: "f", key: "kf" });
        await store.taskFail({
          id: failed.id,
          attempt: 1,
          error: errorRecord("x", 1, at(2)),
          retryAt: null,
          now: at(2),
        });
        const cancelled = await insert(store, { queue: "c", runAt: at(60) });
        await store.taskCancel({ id: cancelled.id, reason: "x", now: at(2) });

        for (const task of [failed, cancelled]) {
          const rerun = await store.taskRerun({ id: task.id, now: at(10) });
          assert.ok(rerun);
          assert.equal(rerun.id, task.id);
          assert.equal(rerun.state, "queued");
          assert.equal(rerun.attempt, 0);
          assert.equal(rerun.finishedAt, null);
          assert.deepEqual(await mustGet(store, task.id), rerun);
        }
        const [claimed] = await store.taskClaim({ queue: "f", types: ["t"], node: "n1", limit: 1, now: at(11) });
        assert.equal(claimed?.id, failed.id);
        assert.equal(claimed?.attempt, 1);
        // The rerun task is active again, so it holds its key.
        const [dup] = await store.taskInsertMany({ now: at(12), tasks: [taskInput({ key: "kf" })] });
        assert.equal(dup?.created, false);
        assert.equal(dup?.task.id, failed.id);
      });

      storeTest("a rerun whose key is now held by another active task is a duplicate_key conflict", async (store) => {
        const old = await running(store, { queue: "f", key: "k" });
        await store.taskFail({ id: old.id, attempt: 1, error: errorRecord("x", 1, at(2)), retryAt: null, now: at(2) });
        const holder = await insert(store, { queue: "g", key: "k" }, at(3));
        const before = await mustGet(store, old.id);
        await assert.rejects(
          store.taskRerun({ id: old.id, now: at(4) }),
          (error: unknown) => error instanceof ConflictError && error.code === "duplicate_key",
        );
        assert.deepEqual(await mustGet(store, old.id), before, "the failed task stays failed");
        assert.equal((await mustGet(store, holder.id)).state, "queued");
      });

      storeTest("an unknown id gives null", async (store) => {
        assert.equal(await store.taskRerun({ id: 987_654, now: T0 }), null);
      });

      storeTest("an active or completed task cannot be rerun", async (store) => {
        const queued = await insert(store, { queue: "q" });
        const scheduled = await insert(store, { queue: "s", runAt: at(60) });
        const run = await running(store, { queue: "r" });
        for (const task of [queued, scheduled, run]) {
          const before = await mustGet(store, task.id);
          await assert.rejects(
            store.taskRerun({ id: task.id, now: at(5) }),
            (error: unknown) => error instanceof ConflictError && error.code === "invalid_state",
            `rerun of a ${task.state} task`,
          );
          assert.deepEqual(await mustGet(store, task.id), before);
        }
        const done = await running(store, { queue: "d" });
        await store.taskComplete({
          now: at(2),
          completions: [{ id: done.id, queue: done.queue, attempt: 1, result: null }],
        });
        await assert.rejects(
          store.taskRerun({ id: done.id, now: at(5) }),
          (error: unknown) => error instanceof ConflictError && error.code === "invalid_state",
          "rerun of a completed task",
        );
      });
    });

    describe("taskProgress and taskStates", () => {
      storeTest("progress is stored on the running attempt only", async (store) => {
        const task = await running(store, { queue: "p" });
        const progress = { percent: 42.5, info: { step: "download", bytes: [1, 2], note: "ünïcode" } };
        assert.equal(await store.taskProgress({ id: task.id, attempt: 1, progress, now: at(2) }), true);
        assert.deepEqual((await mustGet(store, task.id)).progress, progress);
        assert.equal(
          await store.taskProgress({ id: task.id, attempt: 1, progress: { percent: 60 }, now: at(3) }),
          true,
        );
        assert.equal((await mustGet(store, task.id)).progress?.percent, 60);

        assert.equal(
          await store.taskProgress({ id: task.id, attempt: 2, progress: { percent: 99 }, now: at(4) }),
          false,
        );
        assert.equal((await mustGet(store, task.id)).progress?.percent, 60, "a stale attempt changes nothing");
        const queued = await insert(store, { queue: "q" });
        assert.equal(
          await store.taskProgress({ id: queued.id, attempt: 0, progress: { percent: 1 }, now: at(4) }),
          false,
        );
        assert.equal(
          await store.taskProgress({ id: 987_654, attempt: 1, progress: { percent: 1 }, now: at(4) }),
          false,
        );
      });

      storeTest("taskStates gives state and attempt of known ids", async (store) => {
        const queued = await insert(store, { queue: "q" });
        const run = await running(store, { queue: "r" });
        const states = await store.taskStates({ ids: [run.id, 987_654, queued.id] });
        assert.deepEqual(
          [...states].sort((a, b) => a.id - b.id),
          [
            { id: queued.id, state: "queued", attempt: 0 },
            { id: run.id, state: "running", attempt: 1 },
          ],
        );
        assert.deepEqual(await store.taskStates({ ids: [] }), []);
      });
    });

    describe("taskRescue", () => {
      storeTest("requeues tasks of dead or unknown nodes, leaves live nodes alone", async (store) => {
        const node = (id: string, heartbeat: Date) =>
          store.nodeHeartbeat({
            node: { id, name: id, host: "h", pid: 1, version: "1", roles: ["worker"], startedAt: T0, info: null },
            now: heartbeat,
          });
        await node("live", at(100));
        await node("dead", at(10));
        const onLive = await running(store, { queue: "l" }, "live");
        const onDead = await running(store, { queue: "d" }, "dead");
        const onGhost = await running(store, { queue: "g" }, "ghost"); // no node row at all

        const outcomes = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 3, now: at(110) });
        assert.deepEqual(sortedIds(outcomes.map((o) => o.task)), sortedIds([onDead, onGhost]));
        for (const outcome of outcomes) {
          assert.equal(outcome.outcome, "retried");
          assert.equal(outcome.task.state, "queued");
          assert.equal(outcome.task.stalls, 1);
          assert.deepEqual(await mustGet(store, outcome.task.id), outcome.task);
        }
        assert.deepEqual(await mustGet(store, onLive.id), onLive, "the live node's task is untouched");
        assert.deepEqual(
          await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 3, now: at(111) }),
          [],
          "nothing left to rescue",
        );

        // A rescuer never rescues its own tasks, however stale its row: it is alive, it is running this.
        await node("self", at(10));
        const onSelf = await running(store, { queue: "s" }, "self");
        assert.deepEqual(
          await store.taskRescue({ rescuer: "self", deadBefore: at(50), maxStalls: 3, now: at(111) }),
          [],
        );
        assert.equal((await mustGet(store, onSelf.id)).state, "running");

        // The rescued attempt is stale: only the next claim's attempt may complete.
        const [again] = await store.taskClaim({ queue: "d", types: ["t"], node: "live", limit: 1, now: at(112) });
        assert.equal(again?.id, onDead.id);
        assert.equal(again?.attempt, 2);
        assert.equal(again?.stalls, 1);
        assert.deepEqual(
          await store.taskComplete({
            now: at(113),
            completions: [{ id: onDead.id, queue: onDead.queue, attempt: 1, result: "old" }],
          }),
          [],
        );
        assert.equal(
          await store.taskProgress({ id: onDead.id, attempt: 1, progress: { percent: 5 }, now: at(113) }),
          false,
        );
        assert.deepEqual(
          await store.taskComplete({
            now: at(113),
            completions: [{ id: onDead.id, queue: onDead.queue, attempt: 2, result: "new" }],
          }),
          [onDead.id],
        );
        assert.equal((await mustGet(store, onDead.id)).result, "new");
      });

      storeTest("fails a task past maxStalls", async (store) => {
        const task = await running(store, { queue: "s", maxAttempts: 10 }, "ghost");
        const first = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 1, now: at(100) });
        assert.deepEqual(
          first.map((o) => o.outcome),
          ["retried"],
          "one stall is within maxStalls 1",
        );
        await store.taskClaim({ queue: "s", types: ["t"], node: "ghost", limit: 1, now: at(101) });
        const second = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 1, now: at(102) });
        assert.equal(second.length, 1);
        assert.equal(second[0]!.outcome, "failed");
        assert.equal(second[0]!.task.id, task.id);
        const failed = await mustGet(store, task.id);
        assert.equal(failed.state, "failed");
        assert.deepEqual(failed.finishedAt, at(102));
      });

      storeTest("with maxStalls 0 the first stall fails the task", async (store) => {
        const task = await running(store, { queue: "b", maxAttempts: 5 }, "ghost");
        const outcomes = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 0, now: at(100) });
        assert.deepEqual(
          outcomes.map((o) => [o.task.id, o.outcome, o.task.state]),
          [[task.id, "failed", "failed"]],
        );
        assert.equal((await mustGet(store, task.id)).state, "failed");
      });

      storeTest("a task out of attempts fails even with stalls to spare", async (store) => {
        const task = await running(store, { queue: "a", maxAttempts: 1 }, "ghost");
        const outcomes = await store.taskRescue({
          rescuer: "rescuer",
          deadBefore: at(50),
          maxStalls: 10,
          now: at(100),
        });
        assert.deepEqual(
          outcomes.map((o) => [o.task.id, o.outcome]),
          [[task.id, "failed"]],
        );
        assert.equal((await mustGet(store, task.id)).state, "failed");
      });
    });

    describe("taskRelease", () => {
      storeTest("hands back only the given node's running tasks, optionally only the given ids", async (store) => {
        const a = await running(store, { queue: "a" }, "n1");
        const b = await running(store, { queue: "b" }, "n1");
        const c = await running(store, { queue: "c" }, "n1");
        const other = await running(store, { queue: "d" }, "n2");
        const queued = await insert(store, { queue: "e" });

        assert.deepEqual(await store.taskRelease({ node: "n1", ids: [a.id], now: at(5) }), [a.id]);
        assert.equal((await mustGet(store, a.id)).state, "queued");
        assert.equal((await mustGet(store, b.id)).state, "running");
        assert.deepEqual(
          await store.taskRelease({ node: "n1", ids: [other.id, queued.id], now: at(5) }),
          [],
          "not n1's running tasks",
        );

        assert.deepEqual(
          [...(await store.taskRelease({ node: "n1", now: at(6) }))].sort((x, y) => x - y),
          sortedIds([b, c]),
        );
        assert.equal((await mustGet(store, c.id)).state, "queued");
        assert.deepEqual(await mustGet(store, other.id), other, "n2's task is untouched");
        assert.deepEqual(await mustGet(store, queued.id), queued);
        assert.deepEqual(await store.taskRelease({ node: "n1", now: at(7) }), []);
        assert.deepEqual(await store.taskRelease({ node: "unknown", now: at(7) }), []);
      });

      storeTest("a released task runs again under a new attempt number, so the old attempt is stale", async (store) => {
        const task = await running(store, { queue: "a", maxAttempts: 1 }, "n1");
        assert.equal(task.attempt, 1);
        assert.deepEqual(await store.taskRelease({ node: "n1", now: at(5) }), [task.id]);
        const [again] = await store.taskClaim({ queue: "a", types: ["t"], node: "n2", limit: 1, now: at(8) });
        assert.equal(again?.id, task.id);
        assert.equal(again?.attempt, task.attempt + 1, "attempt numbers only grow: they fence off the released run");
        assert.equal(
          again?.maxAttempts,
          task.maxAttempts + 1,
          "the interrupted run is not held against the task's budget",
        );
        assert.equal(again?.stalls, 0, "a release is not a stall");
        assert.deepEqual(
          await store.taskComplete({
            now: at(9),
            completions: [{ id: task.id, queue: task.queue, attempt: task.attempt, result: null }],
          }),
          [],
        );
      });
    });

    describe("pruning", () => {
      storeTest("taskPrune deletes only tasks finished before `before`", async (store) => {
        const completed = await running(store, { queue: "a" });
        await store.taskComplete({
          now: at(10),
          completions: [{ id: completed.id, queue: completed.queue, attempt: 1, result: null }],
        });
        const failed = await running(store, { queue: "b" });
        await store.taskFail({
          id: failed.id,
          attempt: 1,
          error: errorRecord("x", 1, at(20)),
          retryAt: null,
          now: at(20),
        });
        const late = await running(store, { queue: "c" });
        await store.taskComplete({
          now: at(30),
          completions: [{ id: late.id, queue: late.queue, attempt: 1, result: null }],
        });
        const cancelled = await insert(store, { queue: "d" });
        await store.taskCancel({ id: cancelled.id, reason: "x", now: at(15) });
        const queued = await insert(store, { queue: "e" });
        const scheduled = await insert(store, { queue: "f", runAt: at(5) });
        const run = await running(store, { queue: "g" });

        assert.equal(await store.taskPrune({ before: at(25), limit: 100 }), 3);
        assert.deepEqual(sortedIds(await allTasks(store)), sortedIds([late, queued, scheduled, run]));
        assert.equal(await store.taskGet({ id: completed.id }), null);
        assert.equal(await store.taskPrune({ before: at(25), limit: 100 }), 0);
      });

      storeTest("taskPrune deletes at most `limit` per call", async (store) => {
        for (const queue of ["a", "b", "c"]) {
          const task = await running(store, { queue });
          await store.taskComplete({
            now: at(10),
            completions: [{ id: task.id, queue: task.queue, attempt: 1, result: null }],
          });
        }
        assert.equal(await store.taskPrune({ before: at(100), limit: 2 }), 2);
        assert.equal(await store.taskPrune({ before: at(100), limit: 2 }), 1);
        assert.equal(await store.taskPrune({ before: at(100), limit: 2 }), 0);
        assert.equal((await allTasks(store)).length, 0);
      });

      storeTest("taskPrune walks past old tasks that are still active", async (store) => {
        // Created first, so they come first in id order; the walk must go on past them.
        const waiting = await insert(store, { queue: "w", runAt: at(1000) });
        const queued = await insert(store, { queue: "q" });
        const done: Task[] = [];
        for (const queue of ["a", "b", "c"]) {
          const task = await running(store, { queue });
          await store.taskComplete({
            now: at(10),
            completions: [{ id: task.id, queue: task.queue, attempt: 1, result: null }],
          });
          done.push(task);
        }
        assert.equal(await store.taskPrune({ before: at(100), limit: 100 }), 3);
        assert.deepEqual(sortedIds(await allTasks(store)), sortedIds([waiting, queued]));
      });

      storeTest("taskPrune stops at the first task created at or after `before`", async (store) => {
        const old = await running(store, { queue: "a" });
        await store.taskComplete({
          now: at(10),
          completions: [{ id: old.id, queue: old.queue, attempt: 1, result: null }],
        });
        const young = await insert(store, { queue: "b" }, at(50));
        // A clock behind the creator's says it finished before `before`: only a walk that ends at `young`'s
        // creation leaves it (and everything after it) alone.
        await store.taskCancel({ id: young.id, reason: "x", now: at(20) });
        const after = await insert(store, { queue: "c" }, at(50));
        await store.taskCancel({ id: after.id, reason: "x", now: at(20) });
        assert.equal(await store.taskPrune({ before: at(40), limit: 100 }), 1);
        assert.deepEqual(sortedIds(await allTasks(store)), sortedIds([young, after]));
      });

      storeTest("taskPrune never deletes a rerun task", async (store) => {
        const task = await running(store, { queue: "a" });
        await store.taskFail({ id: task.id, attempt: 1, error: errorRecord("x", 1, at(2)), retryAt: null, now: at(2) });
        await store.taskRerun({ id: task.id, now: at(3) });
        assert.equal(await store.taskPrune({ before: at(100), limit: 10 }), 0);
        assert.equal((await mustGet(store, task.id)).state, "queued");
      });

      storeTest("eventPrune deletes log entries recorded before `before`, at most `limit`", async (store) => {
        // Three transactions, three entries; the claim's three events share one entry.
        for (let i = 0; i < 3; i++) await store.taskInsertMany({ now: T0, tasks: [taskInput()] });
        await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 10, now: at(10) });
        const last = await store.eventLastOffset();
        assert.equal(await store.eventPrune({ before: at(5), limit: 2 }), 2);
        assert.equal(await store.eventPrune({ before: at(5), limit: 10 }), 1);
        assert.equal(await store.eventPrune({ before: at(5), limit: 10 }), 0);
        assert.deepEqual(await eventTypes(store), ["task.started", "task.started", "task.started"]);
        assert.equal(await store.eventLastOffset(), last, "pruning old events keeps the last offset");
      });
    });

    describe("queueStats", () => {
      storeTest("counts every state per queue and reports pauses", async (store) => {
        assert.deepEqual(await store.queueStats(), []);
        await insert(store, { queue: "a" });
        await insert(store, { queue: "a" });
        await insert(store, { queue: "a", runAt: at(60) });
        const done = await running(store, { queue: "b" });
        await store.taskComplete({
          now: at(2),
          completions: [{ id: done.id, queue: done.queue, attempt: 1, result: null }],
        });
        const failed = await running(store, { queue: "b" });
        await store.taskFail({
          id: failed.id,
          attempt: 1,
          error: errorRecord("x", 1, at(2)),
          retryAt: null,
          now: at(2),
        });
        const cancelled = await insert(store, { queue: "b" });
        await store.taskCancel({ id: cancelled.id, reason: "x", now: at(2) });
        await running(store, { queue: "b" });
        await store.queueSetPaused({ queue: "b", paused: true, now: at(3) });

        const stats = [...(await store.queueStats())].sort((x, y) => x.queue.localeCompare(y.queue));
        assert.deepEqual(stats, [
          { queue: "a", paused: false, counts: { ...emptyCounts(), queued: 2, scheduled: 1 } },
          { queue: "b", paused: true, counts: { ...emptyCounts(), completed: 1, failed: 1, cancelled: 1, running: 1 } },
        ] satisfies QueueStats[]);
      });
    });

    describe("queue counts", () => {
      /** Counts per queue and state, straight from the tasks (what queueStats must agree with). */
      async function countedFromTasks(store: Store): Promise<Map<string, Record<TaskState, number>>> {
        const counts = new Map<string, Record<TaskState, number>>();
        for (const task of await allTasks(store)) {
          const queue = counts.get(task.queue) ?? emptyCounts();
          queue[task.state] += 1;
          counts.set(task.queue, queue);
        }
        return counts;
      }

      async function assertCountsAgree(store: Store, label: string): Promise<void> {
        const stats = new Map((await store.queueStats()).map((q) => [q.queue, q.counts]));
        const expected = await countedFromTasks(store);
        for (const queue of new Set([...stats.keys(), ...expected.keys()])) {
          assert.deepEqual(
            stats.get(queue) ?? emptyCounts(),
            expected.get(queue) ?? emptyCounts(),
            `${queue} after ${label}`,
          );
        }
      }

      storeTest("queueStats follows every transition, and ignores what changed nothing", async (store) => {
        const node = (id: string, heartbeat: Date) =>
          store.nodeHeartbeat({
            node: { id, name: id, host: "h", pid: 1, version: "1", roles: [], startedAt: T0, info: null },
            now: heartbeat,
          });
        await store.taskInsertMany({
          now: T0,
          tasks: [
            taskInput({ queue: "a" }),
            taskInput({ queue: "a" }),
            taskInput({ queue: "b", runAt: at(5) }),
            taskInput({ queue: "b", key: "k" }),
            taskInput({ queue: "b", key: "k" }),
            taskInput({ queue: "c" }),
          ],
        });
        await assertCountsAgree(store, "insert (one duplicate key)");
        const [a1, a2] = await store.taskClaim({ queue: "a", types: ["t"], node: "n1", limit: 10, now: at(1) });
        const [c1] = await store.taskClaim({ queue: "c", types: ["t"], node: "dead", limit: 10, now: at(1) });
        await assertCountsAgree(store, "claim");
        await store.taskComplete({
          now: at(2),
          completions: [
            { id: a1!.id, queue: a1!.queue, attempt: 1, result: null },
            { id: a1!.id, queue: a1!.queue, attempt: 1, result: null },
          ],
        });
        await store.taskComplete({
          now: at(2),
          completions: [{ id: a1!.id, queue: a1!.queue, attempt: 1, result: null }],
        });
        await assertCountsAgree(store, "complete (twice)");
        await store.taskFail({ id: a2!.id, attempt: 1, error: errorRecord("x", 1, at(3)), retryAt: at(4), now: at(3) });
        await store.taskFail({ id: a2!.id, attempt: 1, error: errorRecord("x", 1, at(3)), retryAt: null, now: at(3) });
        await assertCountsAgree(store, "fail with retry (and a stale fail)");
        await store.taskPromote({ now: at(10), limit: 10 });
        await assertCountsAgree(store, "promote");
        await node("n1", at(10));
        await store.taskRescue({ rescuer: "n1", deadBefore: at(9), maxStalls: 5, now: at(11) });
        await assertCountsAgree(store, "rescue");
        const claimed = await store.taskClaim({ queue: "b", types: ["t"], node: "n1", limit: 10, now: at(12) });
        assert.equal(claimed.length, 2);
        await store.taskRelease({ node: "n1", ids: [claimed[0]!.id], now: at(13) });
        await assertCountsAgree(store, "release");
        await store.taskCancel({ id: claimed[1]!.id, reason: "x", now: at(14) });
        await store.taskCancel({ id: claimed[1]!.id, reason: "again", now: at(14) });
        await assertCountsAgree(store, "cancel (twice)");
        await store.taskRerun({ id: claimed[1]!.id, now: at(15) });
        await assertCountsAgree(store, "rerun");
        for (const task of await store.taskClaim({ queue: "a", types: ["t"], node: "n1", limit: 10, now: at(16) })) {
          await store.taskFail({
            id: task.id,
            attempt: task.attempt,
            error: errorRecord("x", task.attempt, at(16)),
            retryAt: null,
            now: at(16),
          });
        }
        await store.taskCancel({ id: c1!.id, reason: "x", now: at(16) });
        await assertCountsAgree(store, "final failure");
        assert.ok((await store.taskPrune({ before: at(100), limit: 100 })) >= 3);
        await assertCountsAgree(store, "prune");
      });
    });

    describe("event log", () => {
      storeTest("an empty log has last offset 0", async (store) => {
        assert.equal(await store.eventLastOffset(), 0);
        assert.deepEqual(await store.eventList({ after: 0, limit: 10 }), []);
      });

      storeTest("every transition appends its event, in strictly increasing offsets", async (store) => {
        const expect: { type: TaskEventType; taskId: number; queue: string; at: Date }[] = [];
        const check = async (label: string) => {
          const events = await store.eventList({ after: 0, limit: 1000 });
          assert.deepEqual(
            events.map((e) => ({ type: e.type, taskId: e.taskId, queue: e.queue, at: e.at })),
            expect,
            `events after ${label}`,
          );
          for (let i = 1; i < events.length; i++)
            assert.ok(events[i]!.offset > events[i - 1]!.offset, "offsets increase");
          for (const e of events) assert.ok(Number.isSafeInteger(e.offset) && e.offset > 0);
          assert.equal(await store.eventLastOffset(), events.at(-1)?.offset ?? 0, `last offset after ${label}`);
        };

        const a = await insert(store, { queue: "qa" });
        expect.push({ type: "task.created", taskId: a.id, queue: "qa", at: T0 });
        await check("insert");

        await store.taskClaim({ queue: "qa", types: ["t"], node: "n1", limit: 1, now: at(1) });
        expect.push({ type: "task.started", taskId: a.id, queue: "qa", at: at(1) });
        await check("claim");

        await store.taskProgress({ id: a.id, attempt: 1, progress: { percent: 10 }, now: at(2) });
        expect.push({ type: "task.progress", taskId: a.id, queue: "qa", at: at(2) });
        await check("progress");

        await store.taskFail({ id: a.id, attempt: 1, error: errorRecord("x", 1, at(3)), retryAt: at(10), now: at(3) });
        expect.push({ type: "task.retrying", taskId: a.id, queue: "qa", at: at(3) });
        await check("fail with retry");

        await store.taskPromote({ now: at(10), limit: 10 });
        expect.push({ type: "task.promoted", taskId: a.id, queue: "qa", at: at(10) });
        await check("promote");

        await store.taskClaim({ queue: "qa", types: ["t"], node: "n1", limit: 1, now: at(11) });
        expect.push({ type: "task.started", taskId: a.id, queue: "qa", at: at(11) });
        await store.taskFail({ id: a.id, attempt: 2, error: errorRecord("y", 2, at(12)), retryAt: null, now: at(12) });
        expect.push({ type: "task.failed", taskId: a.id, queue: "qa", at: at(12) });
        await check("final failure");

        await store.taskRerun({ id: a.id, now: at(13) });
        expect.push({ type: "task.rerun", taskId: a.id, queue: "qa", at: at(13) });
        await check("rerun");

        await store.taskClaim({ queue: "qa", types: ["t"], node: "n1", limit: 1, now: at(14) });
        expect.push({ type: "task.started", taskId: a.id, queue: "qa", at: at(14) });
        await store.taskComplete({
          now: at(15),
          completions: [{ id: a.id, queue: a.queue, attempt: 1, result: "ok" }],
        });
        expect.push({ type: "task.completed", taskId: a.id, queue: "qa", at: at(15) });
        await check("complete");

        const b = await insert(store, { queue: "qb" }, at(16));
        expect.push({ type: "task.created", taskId: b.id, queue: "qb", at: at(16) });
        await store.taskCancel({ id: b.id, reason: "x", now: at(17) });
        expect.push({ type: "task.cancelled", taskId: b.id, queue: "qb", at: at(17) });
        await check("cancel");

        const c = await running(store, { queue: "qc" }, "ghost", at(18));
        expect.push({ type: "task.created", taskId: c.id, queue: "qc", at: T0 });
        expect.push({ type: "task.started", taskId: c.id, queue: "qc", at: at(18) });
        await store.taskRescue({ rescuer: "rescuer", deadBefore: at(19), maxStalls: 5, now: at(20) });
        expect.push({ type: "task.rescued", taskId: c.id, queue: "qc", at: at(20) });
        await check("rescue");

        // Operations that change nothing write nothing.
        await store.taskInsertMany({ now: at(21), tasks: [] });
        await store.taskComplete({
          now: at(21),
          completions: [{ id: a.id, queue: a.queue, attempt: 1, result: "again" }],
        });
        await store.taskCancel({ id: a.id, reason: "x", now: at(21) });
        await store.taskPromote({ now: at(21), limit: 10 });
        await check("no-ops");
      });

      storeTest("a task's events come from every transaction that touched it, in offset order", async (store) => {
        const [a, b] = (
          await store.taskInsertMany({ now: T0, tasks: [taskInput({ queue: "q" }), taskInput({ queue: "q" })] })
        ).map((o) => o.task);
        for (let attempt = 1; attempt <= 3; attempt++) {
          const claimed = await store.taskClaim({
            queue: "q",
            types: ["t"],
            node: "n1",
            limit: 10,
            now: at(attempt * 10),
          });
          assert.equal(claimed.length, 2);
          await store.taskProgress({ id: a!.id, attempt, progress: { percent: 50 }, now: at(attempt * 10 + 1) });
          for (const task of claimed) {
            const final = attempt === 3;
            await store.taskFail({
              id: task.id,
              attempt,
              error: errorRecord("x", attempt, at(attempt * 10 + 2)),
              retryAt: final ? null : at(attempt * 10 + 5),
              now: at(attempt * 10 + 2),
            });
          }
          await store.taskPromote({ now: at(attempt * 10 + 5), limit: 10 });
        }
        const all = await store.eventList({ after: 0, limit: 1000 });
        const ofA = all.filter((e) => e.taskId === a!.id && e.type !== "task.progress");
        assert.deepEqual(
          await store.eventList({ after: 0, limit: 1000, taskId: a!.id }),
          ofA,
          "progress events stay out of a task's own list",
        );
        assert.deepEqual(
          ofA.map((e) => e.type),
          [
            "task.created",
            "task.started",
            "task.retrying",
            "task.promoted",
            "task.started",
            "task.retrying",
            "task.promoted",
            "task.started",
            "task.failed",
          ],
        );
        assert.deepEqual(await store.eventList({ after: ofA[3]!.offset, limit: 2, taskId: a!.id }), ofA.slice(4, 6));
        assert.equal(all.filter((e) => e.taskId === b!.id).length, 9);
        assert.deepEqual(await store.eventList({ after: 0, limit: 10, taskId: 987_654 }), []);
      });

      storeTest("eventList pages by offset and filters by task", async (store) => {
        const a = await insert(store, { queue: "a" });
        const b = await insert(store, { queue: "b" });
        await store.taskClaim({ queue: "a", types: ["t"], node: "n1", limit: 1, now: at(1) });
        await store.taskClaim({ queue: "b", types: ["t"], node: "n1", limit: 1, now: at(2) });
        await store.taskComplete({ now: at(3), completions: [{ id: a.id, queue: a.queue, attempt: 1, result: null }] });

        const all = await store.eventList({ after: 0, limit: 100 });
        assert.equal(all.length, 5);
        const page = await store.eventList({ after: all[1]!.offset, limit: 2 });
        assert.deepEqual(page, all.slice(2, 4));
        assert.deepEqual(await store.eventList({ after: all[4]!.offset, limit: 10 }), []);
        assert.deepEqual(
          await store.eventList({ after: 0, limit: 100, taskId: a.id }),
          all.filter((e) => e.taskId === a.id),
        );
        assert.deepEqual(await eventTypes(store, a.id), ["task.created", "task.started", "task.completed"]);
        assert.deepEqual(await eventTypes(store, b.id), ["task.created", "task.started"]);
        const afterFirstOfA = await store.eventList({ after: all[0]!.offset, limit: 1, taskId: a.id });
        assert.deepEqual(
          afterFirstOfA.map((e) => e.type),
          ["task.started"],
        );
        for (const e of all) assert.ok(e.at instanceof Date);
      });

      storeTest(
        "alike events of one transaction list one by one, from any offset, each with data of its own",
        async (store) => {
          // One batch: six created events alike but for the id, then a claim's six started events, one of them a retry.
          const tasks = (
            await store.taskInsertMany({ now: T0, tasks: Array.from({ length: 6 }, () => taskInput()) })
          ).map((o) => o.task);
          const [retried] = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 1, now: T0 });
          await store.taskFail({
            id: retried!.id,
            attempt: 1,
            error: { name: "E", message: "m", attempt: 1, at: T0.toISOString() },
            retryAt: T0,
            now: T0,
          });
          await store.taskPromote({ now: at(1), limit: 10 });
          const claimed = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 10, now: at(2) });
          assert.equal(claimed.length, 6);

          const all = await store.eventList({ after: 0, limit: 100 });
          const created = all.filter((e) => e.type === "task.created");
          assert.deepEqual(
            created.map((e) => e.taskId),
            tasks.map((t) => t.id),
          );
          assert.deepEqual(
            created.map((e) => e.offset),
            tasks.map((_, i) => all[0]!.offset + i),
            "consecutive offsets",
          );
          const started = all.slice(-6);
          assert.deepEqual(
            started.map((e) => [e.type, e.taskId, e.data]),
            claimed.map((t) => ["task.started", t.id, { attempt: t.attempt, node: "n1" }]),
          );
          for (let i = 1; i < all.length; i++) assert.equal(all[i]!.offset, all[i - 1]!.offset + 1);
          // Any page boundary, even inside a transaction's events, gives the same sequence.
          for (let k = 0; k < all.length; k++) {
            assert.deepEqual(
              await store.eventList({ after: all[k]!.offset, limit: 2 }),
              all.slice(k + 1, k + 3),
              `after ${all[k]!.offset}`,
            );
          }
          for (const task of tasks) {
            assert.deepEqual(
              await store.eventList({ after: 0, limit: 100, taskId: task.id }),
              all.filter((e) => e.taskId === task.id),
            );
          }
          (created[0]!.data as { type: string }).type = "changed";
          assert.equal((created[1]!.data as { type: string }).type, "t", "events do not share data objects");
        },
      );
    });

    describe("nodes", () => {
      const record = (
        id: string,
        overrides: Partial<Omit<NodeRecord, "heartbeatAt">> = {},
      ): Omit<NodeRecord, "heartbeatAt"> => ({
        id,
        name: `name-${id}`,
        host: "host-1",
        pid: 4242,
        version: "1.2.3",
        roles: ["worker", "leader"],
        startedAt: at(-100),
        info: { concurrency: 10, tree: [{ name: "Heartbeat", restarts: 0 }], label: "ü" },
        ...overrides,
      });

      storeTest("heartbeat inserts a node row and refreshes its heartbeat, roles and info", async (store) => {
        assert.deepEqual(await store.nodeList(), []);
        await store.nodeHeartbeat({ node: record("a"), now: at(1) });
        assert.deepEqual(await store.nodeList(), [{ ...record("a"), heartbeatAt: at(1) }]);

        const refreshed = record("a", { info: { concurrency: 20 }, roles: ["worker"] });
        await store.nodeHeartbeat({ node: refreshed, now: at(5) });
        await store.nodeHeartbeat({ node: record("b", { roles: [] }), now: at(6) });
        const nodes = [...(await store.nodeList())].sort((x, y) => x.id.localeCompare(y.id));
        assert.deepEqual(nodes, [
          { ...refreshed, heartbeatAt: at(5) },
          { ...record("b", { roles: [] }), heartbeatAt: at(6) },
        ]);
      });

      storeTest("a heartbeat refreshes every field (a node restarted under the same id)", async (store) => {
        await store.nodeHeartbeat({ node: record("a"), now: at(1) });
        // Same id, new process: the dashboard's version notice and the supervision view need the new values.
        const restarted = record("a", {
          name: "renamed",
          host: "host-2",
          pid: 777,
          version: "1.2.4",
          startedAt: at(3),
        });
        await store.nodeHeartbeat({ node: restarted, now: at(4) });
        assert.deepEqual(await store.nodeList(), [{ ...restarted, heartbeatAt: at(4) }]);
      });

      storeTest("nodeRemove and nodePrune delete rows", async (store) => {
        await store.nodeHeartbeat({ node: record("old1"), now: at(1) });
        await store.nodeHeartbeat({ node: record("old2"), now: at(2) });
        await store.nodeHeartbeat({ node: record("fresh"), now: at(50) });
        await store.nodeHeartbeat({ node: record("gone"), now: at(50) });
        await store.nodeRemove({ id: "gone" });
        await store.nodeRemove({ id: "never-existed" });
        assert.deepEqual((await store.nodeList()).map((n) => n.id).sort(), ["fresh", "old1", "old2"]);
        assert.equal(await store.nodePrune({ before: at(10) }), 2);
        assert.deepEqual(
          (await store.nodeList()).map((n) => n.id),
          ["fresh"],
        );
        assert.equal(await store.nodePrune({ before: at(10) }), 0);
      });
    });

    describe("leases", () => {
      storeTest("a free lease is taken; the holder renews it; others wait until it expires", async (store) => {
        assert.equal(await store.leaseGet({ name: "leader" }), null);
        assert.equal(await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 5000, now: at(0) }), true);
        assert.equal(
          await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 5000, now: at(1) }),
          false,
          "held by a",
        );
        assert.equal(
          await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 5000, now: at(4) }),
          true,
          "a renews",
        );
        assert.deepEqual(await store.leaseGet({ name: "leader" }), { name: "leader", node: "a", expiresAt: at(9) });
        assert.equal(
          await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 5000, now: at(8) }),
          false,
          "renewed: not expired yet",
        );
        assert.equal(
          await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 5000, now: at(9) }),
          true,
          "expired: b takes it",
        );
        assert.equal(
          await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 5000, now: at(10) }),
          false,
          "a lost it",
        );
        assert.equal(
          await store.leaseAcquire({ name: "other", node: "a", ttlMs: 5000, now: at(10) }),
          true,
          "leases are independent",
        );
      });

      storeTest("release frees the lease only for its holder", async (store) => {
        await store.leaseAcquire({ name: "leader", node: "a", ttlMs: 60_000, now: at(0) });
        await store.leaseRelease({ name: "leader", node: "b" });
        assert.equal((await store.leaseGet({ name: "leader" }))?.node, "a");
        await store.leaseRelease({ name: "leader", node: "a" });
        assert.equal(await store.leaseGet({ name: "leader" }), null);
        assert.equal(await store.leaseAcquire({ name: "leader", node: "b", ttlMs: 60_000, now: at(1) }), true);
      });

      storeTest("concurrent attempts: exactly one node wins", async (store) => {
        const nodes = Array.from({ length: 10 }, (_, i) => `n${i}`);
        const won = await Promise.all(
          nodes.map((node) => store.leaseAcquire({ name: "leader", node, ttlMs: 5000, now: at(0) })),
        );
        assert.equal(won.filter(Boolean).length, 1);
        assert.equal((await store.leaseGet({ name: "leader" }))?.node, nodes[won.indexOf(true)]);
      });
    });

    describe("schedules", () => {
      const schedule = (name: string, extra: Partial<ScheduleInput> = {}): ScheduleInput => ({
        name,
        cron: "*/5 * * * * *",
        timezone: null,
        type: "t",
        data: { from: name },
        options: { queue: "cron" },
        enabled: true,
        ...extra,
      });

      storeTest("upsert creates, replaces by name and keeps lastTick; list, get, delete", async (store) => {
        const created = await store.scheduleUpsert({ schedule: schedule("b"), now: at(1) });
        assert.deepEqual(created, { ...schedule("b"), lastTick: null, createdAt: at(1), updatedAt: at(1) });
        await store.scheduleUpsert({ schedule: schedule("a"), now: at(1) });
        await store.scheduleFire({ name: "b", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) });
        const replaced = await store.scheduleUpsert({
          schedule: schedule("b", { cron: "0 * * * *", data: [1, 2], enabled: false }),
          now: at(6),
        });
        assert.deepEqual(replaced, {
          ...schedule("b", { cron: "0 * * * *", data: [1, 2], enabled: false }),
          lastTick: at(5),
          createdAt: at(1),
          updatedAt: at(6),
        });
        assert.deepEqual(
          (await store.scheduleList()).map((s) => s.name),
          ["a", "b"],
        );
        assert.deepEqual(await store.scheduleGet({ name: "b" }), replaced);
        assert.equal(await store.scheduleGet({ name: "zzz" }), null);
        assert.equal(await store.scheduleDelete({ name: "a" }), true);
        assert.equal(await store.scheduleDelete({ name: "a" }), false);
        assert.deepEqual(
          (await store.scheduleList()).map((s) => s.name),
          ["b"],
        );
      });

      storeTest("each tick fires once: the same or an earlier tick inserts nothing", async (store) => {
        await store.scheduleUpsert({ schedule: schedule("s"), now: at(0) });
        const first = await store.scheduleFire({
          name: "s",
          tick: at(5),
          task: taskInput({ queue: "cron", data: 5 }),
          now: at(5),
        });
        assert.equal(first?.created, true);
        assert.equal(first?.task.data, 5);
        assert.equal(
          await store.scheduleFire({ name: "s", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
          null,
        );
        assert.equal(
          await store.scheduleFire({ name: "s", tick: at(0), task: taskInput({ queue: "cron" }), now: at(6) }),
          null,
        );
        assert.equal(
          (await store.scheduleFire({ name: "s", tick: at(10), task: taskInput({ queue: "cron" }), now: at(10) }))
            ?.created,
          true,
        );
        assert.equal((await store.taskList({ queue: "cron", limit: 10, order: "asc" })).length, 2);
        assert.deepEqual((await store.scheduleGet({ name: "s" }))?.lastTick, at(10));
      });

      storeTest("a disabled or unknown schedule fires nothing", async (store) => {
        await store.scheduleUpsert({ schedule: schedule("off", { enabled: false }), now: at(0) });
        assert.equal(
          await store.scheduleFire({ name: "off", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
          null,
        );
        assert.equal(
          await store.scheduleFire({ name: "nope", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
          null,
        );
        assert.deepEqual(await store.taskList({ queue: "cron", limit: 10, order: "asc" }), []);
      });

      storeTest("concurrent fires of one tick insert exactly one task", async (store) => {
        await store.scheduleUpsert({ schedule: schedule("s"), now: at(0) });
        const outcomes = await Promise.all(
          Array.from({ length: 10 }, () =>
            store.scheduleFire({ name: "s", tick: at(5), task: taskInput({ queue: "cron" }), now: at(5) }),
          ),
        );
        assert.equal(outcomes.filter((o) => o !== null).length, 1);
        assert.equal((await store.taskList({ queue: "cron", limit: 20, order: "asc" })).length, 1);
      });
    });
  });
}

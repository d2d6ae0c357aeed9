/**
 * Conformance cases for taskInsertMany: the fields a new task keeps and gets, ids in input order, large and uniform
 * batches (which a driver may insert along shortcuts that must not show), JSON data round trips, and inputs started at
 * once on a node (startOn).
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { emptyCounts } from "../../core/states.ts";
import type { Json, Task } from "../../core/task.ts";
import type { TaskInsert } from "../store.ts";
import { T0, at, taskInput, insert, mustGet, allTasks, eventTypes, type StoreTest } from "./helpers.ts";

export function insertCases(storeTest: StoreTest): void {
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

    storeTest("a large batch (drivers insert it in chunks) returns each task as the store keeps it", async (store) => {
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
    });

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
}

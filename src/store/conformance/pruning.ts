/**
 * Conformance cases for pruning: taskPrune deletes tasks finished before a time, a limited number per call, walking
 * past old active ones; eventPrune deletes old event-log rows and keeps the last offset.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { Task } from "../../core/task.ts";
import {
  T0,
  at,
  taskInput,
  insert,
  running,
  mustGet,
  allTasks,
  sortedIds,
  errorRecord,
  eventTypes,
  type StoreTest,
} from "./helpers.ts";

export function pruningCases(storeTest: StoreTest): void {
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
}

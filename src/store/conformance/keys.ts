/**
 * Conformance cases for uniqueness keys: an active task holds its key, so an insert with that key gets that task
 * instead of a new one; a finished task frees its key.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { T0, at, taskInput, insert, running, allTasks, errorRecord, eventTypes, type StoreTest } from "./helpers.ts";

export function keyCases(storeTest: StoreTest): void {
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
}

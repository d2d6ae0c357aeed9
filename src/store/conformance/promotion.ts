/**
 * Conformance cases for scheduled tasks: taskPromote moves the due ones to their queues, taskNextRunAt says when the
 * next one is due.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { T0, at, taskInput, insert, mustGet, type StoreTest } from "./helpers.ts";

export function promotionCases(storeTest: StoreTest): void {
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
}

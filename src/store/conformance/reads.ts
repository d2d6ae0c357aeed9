/**
 * Conformance cases for reading tasks: taskGet by id, and taskList with its filters, order and cursor.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { Task } from "../../core/task.ts";
import { at, insert, type StoreTest } from "./helpers.ts";

export function readCases(storeTest: StoreTest): void {
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
        ids(await store.taskList({ limit: 10, order: "asc", states: ["scheduled", "queued"], queue: "b", type: "y" })),
        [b2.id],
      );
      assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", states: ["running"] })), []);
      assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", states: [] })), []);
      // An id range, both ends included, with the cursor inside it.
      assert.deepEqual(ids(await store.taskList({ limit: 10, order: "desc", idMin: a2.id, idMax: b1.id })), [
        b1.id,
        a2.id,
      ]);
      assert.deepEqual(ids(await store.taskList({ limit: 10, order: "asc", idMin: a2.id, after: a2.id })), [
        b1.id,
        b2.id,
      ]);
    });

    storeTest(
      "taskIdRange and taskCreatedFrom: the ends of the ids, and the first task from an id on",
      async (store) => {
        assert.equal(await store.taskIdRange(), null);
        assert.equal(await store.taskCreatedFrom({ id: 1 }), null);
        const first = await insert(store, {});
        const second = await insert(store, {}, at(5));
        assert.deepEqual(await store.taskIdRange(), { min: first.id, max: second.id });
        assert.deepEqual(await store.taskCreatedFrom({ id: first.id + 1 }), { id: second.id, createdAt: at(5) });
        assert.deepEqual(await store.taskCreatedFrom({ id: first.id }), { id: first.id, createdAt: first.createdAt });
        assert.equal(await store.taskCreatedFrom({ id: second.id + 1 }), null);
      },
    );
  });
}

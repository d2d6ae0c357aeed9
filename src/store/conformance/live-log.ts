/**
 * Conformance cases for what the live stream needs of the log: an epoch made with the log (the same on every
 * read, different in another log), the oldest offset still held, and events that belong to no task (a channel's
 * messages, the cluster's events), appended in one transaction between task events, never mistaken for a task's.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { Store } from "../store.ts";
import { T0, at, insert, type StoreTest } from "./helpers.ts";

export function liveLogCases(storeTest: StoreTest, makeStore: () => Promise<Store>): void {
  describe("live log", () => {
    storeTest("the log has an epoch of its own, the same on every read", async (store) => {
      const first = await store.eventLogInfo();
      assert.match(first.epoch, /^[A-Za-z0-9_-]{8,64}$/);
      assert.equal((await store.eventLogInfo()).epoch, first.epoch);
      const other = await makeStore();
      try {
        assert.notEqual((await other.eventLogInfo()).epoch, first.epoch, "another log, another epoch");
      } finally {
        await other.close();
      }
    });

    storeTest("oldest and last offsets follow inserts and pruning", async (store) => {
      assert.deepEqual(await offsets(store), { oldestOffset: 1, lastOffset: 0 });
      await insert(store, { queue: "q" }, T0);
      await insert(store, { queue: "q" }, at(10));
      await insert(store, { queue: "q" }, at(20));
      assert.deepEqual(await offsets(store), { oldestOffset: 1, lastOffset: 3 });
      await store.eventPrune({ before: at(15), limit: 100 });
      assert.deepEqual(await offsets(store), { oldestOffset: 3, lastOffset: 3 });
    });

    storeTest("channel events go between task events, in one transaction, with their channel", async (store) => {
      const a = await insert(store, { queue: "q" });
      await store.eventAppend({
        events: [
          { type: "message", channel: "chat:1", data: { text: "hi" } },
          { type: "message", channel: "chat:1", data: { text: "hi" } },
          { type: "node.joined", channel: "nodes", data: { node: "n1" } },
        ],
        now: at(5),
      });
      const b = await insert(store, { queue: "q" }, at(6));
      const events = await store.eventList({ after: 0, limit: 100 });
      assert.deepEqual(
        events.map((e) => [e.offset, e.type, e.taskId, e.queue, e.channel, e.data]),
        [
          [1, "task.created", a.id, "q", null, events[0]!.data],
          [2, "message", 0, "", "chat:1", { text: "hi" }],
          [3, "message", 0, "", "chat:1", { text: "hi" }],
          [4, "node.joined", 0, "", "nodes", { node: "n1" }],
          [5, "task.created", b.id, "q", null, events[4]!.data],
        ],
      );
      assert.deepEqual(events[1]!.at, at(5));
      assert.equal(await store.eventLastOffset(), 5);
      // A channel's event is no task's, whatever id the filter names.
      assert.deepEqual(
        (await store.eventList({ after: 0, limit: 100, taskId: a.id })).map((e) => e.type),
        ["task.created"],
      );
      assert.deepEqual(await store.eventList({ after: 0, limit: 100, taskId: 0 }), []);
      assert.deepEqual(
        (await store.eventList({ after: 2, limit: 2 })).map((e) => e.offset),
        [3, 4],
        "paging inside one append",
      );
    });

    storeTest("an empty append writes nothing", async (store) => {
      await store.eventAppend({ events: [], now: T0 });
      assert.equal(await store.eventLastOffset(), 0);
    });
  });
}

async function offsets(store: Store): Promise<{ oldestOffset: number; lastOffset: number }> {
  const { oldestOffset, lastOffset } = await store.eventLogInfo();
  return { oldestOffset, lastOffset };
}

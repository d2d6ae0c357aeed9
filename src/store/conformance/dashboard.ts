/**
 * Conformance cases for what the dashboard steers and charts: a queue's cluster-wide concurrency, deleting finished
 * tasks (a person's action: counts and a task.deleted event each, active tasks untouched), listing by creation time,
 * and each node's task statistics per bucket.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { emptyCounts } from "../../core/states.ts";
import { T0, at, insert, running, errorRecord, sortedIds, type StoreTest } from "./helpers.ts";

export function dashboardCases(storeTest: StoreTest): void {
  describe("dashboard", () => {
    storeTest("a queue's concurrency is set, kept apart from its pause flag, and cleared with null", async (store) => {
      await store.queueSetConcurrency({ queue: "q", concurrency: 7, now: T0 });
      assert.deepEqual(await store.queueStats(), [
        { queue: "q", paused: false, concurrency: 7, counts: emptyCounts() },
      ]);
      await store.queueSetPaused({ queue: "q", paused: true, now: at(1) });
      await insert(store, { queue: "q" });
      assert.deepEqual(await store.queueStats(), [
        { queue: "q", paused: true, concurrency: 7, counts: { ...emptyCounts(), queued: 1 } },
      ]);
      await store.queueSetConcurrency({ queue: "q", concurrency: null, now: at(2) });
      assert.equal((await store.queueStats())[0]!.concurrency, null);
      assert.equal((await store.queueStats())[0]!.paused, true, "the pause flag stays");
    });

    storeTest(
      "deleting tasks takes only finished ones, counts them out and logs a task.deleted each",
      async (store) => {
        const done = await running(store, { queue: "d" });
        await store.taskComplete({ completions: [{ id: done.id, queue: "d", attempt: 1, result: 1 }], now: at(2) });
        const failed = await running(store, { queue: "e" });
        await store.taskFail({
          id: failed.id,
          attempt: 1,
          error: errorRecord("x", 1, at(2)),
          retryAt: null,
          now: at(2),
        });
        const queued = await insert(store, { queue: "f" });
        const offset = await store.eventLastOffset();

        const deleted = await store.taskDelete({ ids: [queued.id, failed.id, done.id, 987_654], now: at(3) });
        assert.deepEqual(deleted, sortedIds([done, failed]), "finished ones only; unknown ids ignored");
        assert.equal(await store.taskGet({ id: done.id }), null);
        assert.ok(await store.taskGet({ id: queued.id }), "an active task is left alone");
        const counts = Object.fromEntries((await store.queueStats()).map((q) => [q.queue, q.counts]));
        assert.deepEqual(counts.f, { ...emptyCounts(), queued: 1 });
        assert.equal(counts.d?.completed ?? 0, 0);
        assert.equal(counts.e?.failed ?? 0, 0);
        const events = await store.eventList({ after: offset, limit: 10 });
        assert.deepEqual(
          events.map((e) => [e.type, e.taskId, e.data]),
          [
            ["task.deleted", done.id, { state: "completed" }],
            ["task.deleted", failed.id, { state: "failed" }],
          ],
        );
        assert.deepEqual(await store.taskDelete({ ids: [done.id], now: at(4) }), [], "deleting again does nothing");
        assert.equal(await store.eventLastOffset(), events.at(-1)!.offset, "and logs nothing");
      },
    );

    storeTest("tasks are listed by creation time, both ends and with the other filters", async (store) => {
      const early = await insert(store, { queue: "t" }, at(10));
      const middle = await insert(store, { queue: "t" }, at(20));
      const late = await insert(store, { queue: "u" }, at(30));
      const ids = async (params: { createdAfter?: Date; createdBefore?: Date; queue?: string }) =>
        (await store.taskList({ ...params, limit: 10, order: "asc" })).map((t) => t.id);
      assert.deepEqual(await ids({ createdAfter: at(20) }), [middle.id, late.id], "at or after");
      assert.deepEqual(await ids({ createdBefore: at(20) }), [early.id], "strictly before");
      assert.deepEqual(await ids({ createdAfter: at(15), createdBefore: at(25) }), [middle.id]);
      assert.deepEqual(await ids({ createdAfter: at(15), queue: "t" }), [middle.id]);
    });

    storeTest("task statistics: appended per node and bucket, listed from a time, pruned before one", async (store) => {
      const bucket = (seconds: number, node: string, completed: number) => ({
        at: at(seconds),
        node,
        completed,
        failed: 1,
        retried: 2,
        run: [0, completed, 0],
        wait: [completed, 0, 0],
      });
      await store.statsAppend({ bucket: bucket(0, "n1", 3) });
      await store.statsAppend({ bucket: bucket(5, "n2", 4) });
      await store.statsAppend({ bucket: bucket(5, "n1", 5) });
      await store.statsAppend({ bucket: bucket(5, "n1", 6) }); // a repeat replaces
      assert.deepEqual(await store.statsList({ since: at(5) }), [bucket(5, "n1", 6), bucket(5, "n2", 4)]);
      assert.equal((await store.statsList({ since: T0 })).length, 3);
      assert.equal(await store.statsPrune({ before: at(5) }), 1);
      assert.deepEqual(
        (await store.statsList({ since: T0 })).map((b) => b.node),
        ["n1", "n2"],
      );
    });
  });
}

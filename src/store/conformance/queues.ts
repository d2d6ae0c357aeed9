/**
 * Conformance cases for queues: queueStats reports counts per state and pause flags, and its counts agree with the
 * tasks after every transition (and after operations that change nothing).
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { emptyCounts, type TaskState } from "../../core/states.ts";
import type { QueueStats, Store } from "../store.ts";
import { T0, at, taskInput, insert, running, allTasks, errorRecord, type StoreTest } from "./helpers.ts";

export function queueCases(storeTest: StoreTest): void {
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
        { queue: "a", paused: false, concurrency: null, counts: { ...emptyCounts(), queued: 2, scheduled: 1 } },
        {
          queue: "b",
          paused: true,
          concurrency: null,
          counts: { ...emptyCounts(), completed: 1, failed: 1, cancelled: 1, running: 1 },
        },
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
}

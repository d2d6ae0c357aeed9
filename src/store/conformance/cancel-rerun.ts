/**
 * Conformance cases for taskCancel (any active task; a finished one is left as it is; a cancelled attempt is stale) and
 * taskRerun (a failed or cancelled task runs again, unless another active task holds its key).
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { ConflictError } from "../../core/errors.ts";
import { T0, at, taskInput, insert, running, mustGet, errorRecord, type StoreTest } from "./helpers.ts";

export function cancelRerunCases(storeTest: StoreTest): void {
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
      assert.equal(await store.taskProgress({ id: task.id, attempt: 1, progress: { percent: 50 }, now: at(3) }), false);
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
}

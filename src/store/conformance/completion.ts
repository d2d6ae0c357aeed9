/**
 * Conformance cases for what becomes of a running attempt: taskComplete (batches, stale and repeated entries), taskFail
 * (a retry, or failed for good; a bounded error history), taskProgress, and taskStates, which a node reads to check on
 * its tasks.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { MAX_ERROR_HISTORY, type Task } from "../../core/task.ts";
import type { TaskCompletion } from "../store.ts";
import { T0, at, taskInput, insert, running, mustGet, errorRecord, type StoreTest } from "./helpers.ts";

export function completionCases(storeTest: StoreTest): void {
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

    storeTest("a large batch: every entry judged on its own and in order, one event and count each", async (store) => {
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
      const expected = completions.filter((c) => c.attempt === 1 && !done.has(c.id) && done.add(c.id) !== undefined);
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
    });
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
      // `errors` holds the history oldest first, the latest error included.
      assert.deepEqual(again.errors, [error, second]);
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
      // Oldest first and contiguous, ending with the latest error.
      const attempts = last.errors.map((e) => e.attempt);
      const end = attempts.at(-1)!;
      assert.equal(end, failures, "the history ends with the latest error");
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

  describe("taskProgress and taskStates", () => {
    storeTest("progress is stored on the running attempt only", async (store) => {
      const task = await running(store, { queue: "p" });
      const progress = { percent: 42.5, info: { step: "download", bytes: [1, 2], note: "ünïcode" } };
      assert.equal(await store.taskProgress({ id: task.id, attempt: 1, progress, now: at(2) }), true);
      assert.deepEqual((await mustGet(store, task.id)).progress, progress);
      assert.equal(await store.taskProgress({ id: task.id, attempt: 1, progress: { percent: 60 }, now: at(3) }), true);
      assert.equal((await mustGet(store, task.id)).progress?.percent, 60);

      assert.equal(await store.taskProgress({ id: task.id, attempt: 2, progress: { percent: 99 }, now: at(4) }), false);
      assert.equal((await mustGet(store, task.id)).progress?.percent, 60, "a stale attempt changes nothing");
      const queued = await insert(store, { queue: "q" });
      assert.equal(
        await store.taskProgress({ id: queued.id, attempt: 0, progress: { percent: 1 }, now: at(4) }),
        false,
      );
      assert.equal(await store.taskProgress({ id: 987_654, attempt: 1, progress: { percent: 1 }, now: at(4) }), false);
    });

    storeTest("taskStates gives state, attempt and type of known ids", async (store) => {
      const queued = await insert(store, { queue: "q" });
      const run = await running(store, { queue: "r" });
      const states = await store.taskStates({ ids: [run.id, 987_654, queued.id] });
      assert.deepEqual(
        [...states].sort((a, b) => a.id - b.id),
        [
          { id: queued.id, state: "queued", attempt: 0, type: queued.type },
          { id: run.id, state: "running", attempt: 1, type: run.type },
        ],
      );
      assert.deepEqual(await store.taskStates({ ids: [] }), []);
    });
  });
}

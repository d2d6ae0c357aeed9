/**
 * Conformance cases for running tasks whose node is gone (taskRescue: retried, counting a stall, or failed) or that
 * their node hands back (taskRelease: queued again, the run not held against the task); either way the old attempt is
 * stale.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { T0, at, insert, running, mustGet, sortedIds, type StoreTest } from "./helpers.ts";

export function rescueReleaseCases(storeTest: StoreTest): void {
  describe("taskRescue", () => {
    storeTest("requeues tasks of dead or unknown nodes, leaves live nodes alone", async (store) => {
      const node = (id: string, heartbeat: Date) =>
        store.nodeHeartbeat({
          node: { id, name: id, host: "h", pid: 1, version: "1", roles: ["worker"], startedAt: T0, info: null },
          now: heartbeat,
        });
      await node("live", at(100));
      await node("dead", at(10));
      const onLive = await running(store, { queue: "l" }, "live");
      const onDead = await running(store, { queue: "d" }, "dead");
      const onGhost = await running(store, { queue: "g" }, "ghost"); // no node row at all

      const outcomes = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 3, now: at(110) });
      assert.deepEqual(sortedIds(outcomes.map((o) => o.task)), sortedIds([onDead, onGhost]));
      for (const outcome of outcomes) {
        assert.equal(outcome.outcome, "retried");
        assert.equal(outcome.task.state, "queued");
        assert.equal(outcome.task.stalls, 1);
        assert.deepEqual(await mustGet(store, outcome.task.id), outcome.task);
      }
      assert.deepEqual(await mustGet(store, onLive.id), onLive, "the live node's task is untouched");
      assert.deepEqual(
        await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 3, now: at(111) }),
        [],
        "nothing left to rescue",
      );

      // A rescuer never rescues its own tasks, however stale its row: it is alive, it is running this.
      await node("self", at(10));
      const onSelf = await running(store, { queue: "s" }, "self");
      assert.deepEqual(await store.taskRescue({ rescuer: "self", deadBefore: at(50), maxStalls: 3, now: at(111) }), []);
      assert.equal((await mustGet(store, onSelf.id)).state, "running");

      // The rescued attempt is stale: only the next claim's attempt may complete.
      const [again] = await store.taskClaim({ queue: "d", types: ["t"], node: "live", limit: 1, now: at(112) });
      assert.equal(again?.id, onDead.id);
      assert.equal(again?.attempt, 2);
      assert.equal(again?.stalls, 1);
      assert.deepEqual(
        await store.taskComplete({
          now: at(113),
          completions: [{ id: onDead.id, queue: onDead.queue, attempt: 1, result: "old" }],
        }),
        [],
      );
      assert.equal(
        await store.taskProgress({ id: onDead.id, attempt: 1, progress: { percent: 5 }, now: at(113) }),
        false,
      );
      assert.deepEqual(
        await store.taskComplete({
          now: at(113),
          completions: [{ id: onDead.id, queue: onDead.queue, attempt: 2, result: "new" }],
        }),
        [onDead.id],
      );
      assert.equal((await mustGet(store, onDead.id)).result, "new");
    });

    storeTest("fails a task past maxStalls", async (store) => {
      const task = await running(store, { queue: "s", maxAttempts: 10 }, "ghost");
      const first = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 1, now: at(100) });
      assert.deepEqual(
        first.map((o) => o.outcome),
        ["retried"],
        "one stall is within maxStalls 1",
      );
      await store.taskClaim({ queue: "s", types: ["t"], node: "ghost", limit: 1, now: at(101) });
      const second = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 1, now: at(102) });
      assert.equal(second.length, 1);
      assert.equal(second[0]!.outcome, "failed");
      assert.equal(second[0]!.task.id, task.id);
      const failed = await mustGet(store, task.id);
      assert.equal(failed.state, "failed");
      assert.deepEqual(failed.finishedAt, at(102));
    });

    storeTest("with maxStalls 0 the first stall fails the task", async (store) => {
      const task = await running(store, { queue: "b", maxAttempts: 5 }, "ghost");
      const outcomes = await store.taskRescue({ rescuer: "rescuer", deadBefore: at(50), maxStalls: 0, now: at(100) });
      assert.deepEqual(
        outcomes.map((o) => [o.task.id, o.outcome, o.task.state]),
        [[task.id, "failed", "failed"]],
      );
      assert.equal((await mustGet(store, task.id)).state, "failed");
    });

    storeTest("a task out of attempts fails even with stalls to spare", async (store) => {
      const task = await running(store, { queue: "a", maxAttempts: 1 }, "ghost");
      const outcomes = await store.taskRescue({
        rescuer: "rescuer",
        deadBefore: at(50),
        maxStalls: 10,
        now: at(100),
      });
      assert.deepEqual(
        outcomes.map((o) => [o.task.id, o.outcome]),
        [[task.id, "failed"]],
      );
      assert.equal((await mustGet(store, task.id)).state, "failed");
    });

    storeTest(
      "with abandoned: only the rescuer's own running tasks among the ids, each counting a stall",
      async (store) => {
        const a = await running(store, { queue: "a", maxAttempts: 5 }, "n1");
        const b = await running(store, { queue: "b", maxAttempts: 5 }, "n1");
        const unlisted = await running(store, { queue: "c" }, "n1");
        const elsewhere = await running(store, { queue: "d" }, "n2");
        const queued = await insert(store, { queue: "e" });
        const abandoned = [a.id, b.id, elsewhere.id, queued.id];
        const outcomes = await store.taskRescue({
          rescuer: "n1",
          deadBefore: at(0),
          maxStalls: 1,
          now: at(10),
          abandoned,
        });
        assert.deepEqual(sortedIds(outcomes.map((o) => o.task)), sortedIds([a, b]));
        for (const outcome of outcomes) {
          assert.deepEqual(
            [outcome.outcome, outcome.task.state, outcome.task.stalls, outcome.task.error?.name],
            ["retried", "queued", 1, "StalledError"],
          );
          assert.deepEqual(await mustGet(store, outcome.task.id), outcome.task);
        }
        assert.deepEqual(await mustGet(store, unlisted.id), unlisted, "a task not listed stays running");
        assert.deepEqual(await mustGet(store, elsewhere.id), elsewhere, "another node's task is never the rescuer's");
        assert.deepEqual(await mustGet(store, queued.id), queued);

        // Abandoned again: the second stall is past maxStalls 1.
        const [again] = await store.taskClaim({ queue: "a", types: ["t"], node: "n1", limit: 1, now: at(11) });
        const second = await store.taskRescue({
          rescuer: "n1",
          deadBefore: at(0),
          maxStalls: 1,
          now: at(12),
          abandoned: [again!.id],
        });
        assert.deepEqual(
          second.map((o) => [o.task.id, o.outcome, o.task.state, o.task.stalls]),
          [[a.id, "failed", "failed", 2]],
        );
      },
    );
  });

  describe("taskRelease", () => {
    storeTest("hands back only the given node's running tasks, optionally only the given ids", async (store) => {
      const a = await running(store, { queue: "a" }, "n1");
      const b = await running(store, { queue: "b" }, "n1");
      const c = await running(store, { queue: "c" }, "n1");
      const other = await running(store, { queue: "d" }, "n2");
      const queued = await insert(store, { queue: "e" });

      assert.deepEqual(await store.taskRelease({ node: "n1", ids: [a.id], now: at(5) }), [a.id]);
      assert.equal((await mustGet(store, a.id)).state, "queued");
      assert.equal((await mustGet(store, b.id)).state, "running");
      assert.deepEqual(
        await store.taskRelease({ node: "n1", ids: [other.id, queued.id], now: at(5) }),
        [],
        "not n1's running tasks",
      );

      assert.deepEqual(
        [...(await store.taskRelease({ node: "n1", now: at(6) }))].sort((x, y) => x - y),
        sortedIds([b, c]),
      );
      assert.equal((await mustGet(store, c.id)).state, "queued");
      assert.deepEqual(await mustGet(store, other.id), other, "n2's task is untouched");
      assert.deepEqual(await mustGet(store, queued.id), queued);
      assert.deepEqual(await store.taskRelease({ node: "n1", now: at(7) }), []);
      assert.deepEqual(await store.taskRelease({ node: "unknown", now: at(7) }), []);
    });

    storeTest("a released task runs again under a new attempt number, so the old attempt is stale", async (store) => {
      const task = await running(store, { queue: "a", maxAttempts: 1 }, "n1");
      assert.equal(task.attempt, 1);
      assert.deepEqual(await store.taskRelease({ node: "n1", now: at(5) }), [task.id]);
      const [again] = await store.taskClaim({ queue: "a", types: ["t"], node: "n2", limit: 1, now: at(8) });
      assert.equal(again?.id, task.id);
      assert.equal(again?.attempt, task.attempt + 1, "attempt numbers only grow: they fence off the released run");
      assert.equal(
        again?.maxAttempts,
        task.maxAttempts + 1,
        "the interrupted run is not held against the task's budget",
      );
      assert.equal(again?.stalls, 0, "a release is not a stall");
      assert.deepEqual(
        await store.taskComplete({
          now: at(9),
          completions: [{ id: task.id, queue: task.queue, attempt: task.attempt, result: null }],
        }),
        [],
      );
    });
  });
}

/**
 * Conformance cases for taskClaim: priority then id order, only the given queue and types, never a scheduled task nor
 * one of a paused queue, and never one task twice, even to concurrent claimers.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { T0, at, taskInput, insert, mustGet, sortedIds, type StoreTest } from "./helpers.ts";

export function claimCases(storeTest: StoreTest): void {
  describe("taskClaim", () => {
    storeTest("claims by priority (higher first) then id", async (store) => {
      const outcomes = await store.taskInsertMany({
        now: T0,
        tasks: [0, 5, 0, 10, 5].map((priority) => taskInput({ priority })),
      });
      const [p0a, p5a, p0b, p10, p5b] = outcomes.map((o) => o.task.id);
      const order: number[] = [];
      for (let i = 0; i < 5; i++) {
        const claimed = await store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 1, now: at(1) });
        assert.equal(claimed.length, 1);
        order.push(claimed[0]!.id);
      }
      assert.deepEqual(order, [p10, p5a, p5b, p0a, p0b]);
    });

    storeTest("a batch takes the first `limit` tasks in claim order", async (store) => {
      const outcomes = await store.taskInsertMany({
        now: T0,
        tasks: [0, 5, 0, 10, 5].map((priority) => taskInput({ priority })),
      });
      const [p0a, p5a, p0b, p10, p5b] = outcomes.map((o) => o.task.id);
      const claim = () => store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: at(1) });
      assert.deepEqual(
        sortedIds(await claim()),
        [p5a!, p10!].sort((a, b) => a - b),
      );
      assert.deepEqual(
        sortedIds(await claim()),
        [p0a!, p5b!].sort((a, b) => a - b),
      );
      assert.deepEqual(sortedIds(await claim()), [p0b]);
      assert.deepEqual(await claim(), []);
    });

    storeTest("sets running, node, attempt + 1 and startedAt", async (store) => {
      const task = await insert(store, { maxAttempts: 4 });
      const [claimed] = await store.taskClaim({
        queue: "default",
        types: ["t"],
        node: "node-a",
        limit: 10,
        now: at(5),
      });
      assert.ok(claimed);
      assert.equal(claimed.id, task.id);
      assert.equal(claimed.state, "running");
      assert.equal(claimed.node, "node-a");
      assert.equal(claimed.attempt, 1);
      assert.deepEqual(claimed.startedAt, at(5));
      assert.equal(claimed.finishedAt, null);
      assert.deepEqual(await mustGet(store, task.id), claimed, "the claim is stored as returned");
    });

    storeTest("only the given queue and only the given types", async (store) => {
      const wanted = await insert(store, { queue: "q1", type: "a" });
      const otherType = await insert(store, { queue: "q1", type: "c" });
      const otherQueue = await insert(store, { queue: "q2", type: "a" });
      const secondType = await insert(store, { queue: "q1", type: "b" });
      const claimed = await store.taskClaim({ queue: "q1", types: ["a", "b"], node: "n1", limit: 10, now: at(1) });
      assert.deepEqual(sortedIds(claimed), [wanted.id, secondType.id]);
      assert.equal((await mustGet(store, otherType.id)).state, "queued");
      assert.equal((await mustGet(store, otherQueue.id)).state, "queued");
    });

    storeTest("never claims scheduled tasks until they are promoted", async (store) => {
      const later = await insert(store, { runAt: at(60) });
      const claim = (now: Date) => store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 10, now });
      assert.deepEqual(await claim(at(1)), []);
      // Even once due, a scheduled task waits for promotion.
      assert.deepEqual(await claim(at(120)), []);
      assert.equal((await mustGet(store, later.id)).state, "scheduled");
      await store.taskPromote({ now: at(120), limit: 10 });
      assert.deepEqual(sortedIds(await claim(at(121))), [later.id]);
    });

    storeTest("two successive claims never return the same task", async (store) => {
      await store.taskInsertMany({ now: T0, tasks: [taskInput(), taskInput(), taskInput(), taskInput()] });
      const claim = () => store.taskClaim({ queue: "default", types: ["t"], node: "n1", limit: 2, now: at(1) });
      const first = await claim();
      const second = await claim();
      assert.equal(first.length, 2);
      assert.equal(second.length, 2);
      assert.equal(new Set([...sortedIds(first), ...sortedIds(second)]).size, 4);
      assert.deepEqual(await claim(), []);
    });

    storeTest("a paused queue gives nothing until resumed", async (store) => {
      const task = await insert(store, { queue: "p" });
      const other = await insert(store, { queue: "o" });
      await store.queueSetPaused({ queue: "p", paused: true, now: at(1) });
      assert.deepEqual(await store.taskClaim({ queue: "p", types: ["t"], node: "n1", limit: 10, now: at(2) }), []);
      assert.deepEqual(
        sortedIds(await store.taskClaim({ queue: "o", types: ["t"], node: "n1", limit: 10, now: at(2) })),
        [other.id],
      );
      await store.queueSetPaused({ queue: "p", paused: false, now: at(3) });
      assert.deepEqual(
        sortedIds(await store.taskClaim({ queue: "p", types: ["t"], node: "n1", limit: 10, now: at(4) })),
        [task.id],
      );
    });

    storeTest("a queue paused before it has tasks stays paused", async (store) => {
      await store.queueSetPaused({ queue: "early", paused: true, now: T0 });
      await insert(store, { queue: "early" }, at(1));
      assert.deepEqual(await store.taskClaim({ queue: "early", types: ["t"], node: "n1", limit: 10, now: at(2) }), []);
    });

    storeTest("20 concurrent claims over 50 tasks claim each task exactly once", async (store) => {
      const outcomes = await store.taskInsertMany({
        now: T0,
        tasks: Array.from({ length: 50 }, (_, i) => taskInput({ data: i })),
      });
      const batches = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.taskClaim({ queue: "default", types: ["t"], node: `n${i}`, limit: 5, now: at(1) }),
        ),
      );
      const claimed = batches.flat();
      assert.equal(claimed.length, 50, "all 50 claimed");
      assert.equal(new Set(claimed.map((t) => t.id)).size, 50, "none claimed twice");
      assert.deepEqual(sortedIds(claimed), sortedIds(outcomes.map((o) => o.task)));
      for (const [i, batch] of batches.entries()) {
        assert.ok(batch.length <= 5, "limit respected");
        for (const task of batch) {
          const stored = await mustGet(store, task.id);
          assert.equal(stored.state, "running");
          assert.equal(stored.node, `n${i}`, "the stored node is the claimer's");
          assert.equal(stored.attempt, 1);
        }
      }
    });
  });
}

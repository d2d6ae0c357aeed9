/**
 * Conveyor behaviour: concurrency limits, priorities with FIFO, and delays; on SQLite and on PostgreSQL.
 */
import { after, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { ConveyorOptions } from "./options.ts";
import { deferred, type Deferred, leakedResources } from "./fixtures/runtime-handlers.ts";
import { testNode, testStores } from "./fixtures/test-node.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket, thread or handle behind"));

/**
 * Tracks handlers that block until released. `policy` decides, each time one starts, whether to release
 * the oldest blocked one; handlers count how many run at once.
 */
class Gate {
  inFlight = 0;
  max = 0;
  started = 0;
  readonly #blocked: Deferred<void>[] = [];

  async enter(onStart: (gate: Gate) => void): Promise<void> {
    this.inFlight++;
    this.started++;
    this.max = Math.max(this.max, this.inFlight);
    const release = deferred();
    this.#blocked.push(release);
    onStart(this);
    try {
      await release.promise;
    } finally {
      this.inFlight--;
    }
  }

  /** Releases the oldest blocked handler on a later turn, so the runtime gets a chance to over-claim first. */
  releaseOne(): void {
    const next = this.#blocked.shift();
    if (next !== undefined) setImmediate(() => next.resolve());
  }

  releaseAll(): void {
    while (this.#blocked.length > 0) this.releaseOne();
  }
}

for (const store of await testStores("scheduling")) {
  describe(store, () => {
    const node = (t: TestContext, options?: ConveyorOptions) => testNode(t, store, options);

    test("concurrency 3: twelve blocking tasks never run more than 3 at once, and all complete", {
      timeout: 10_000,
    }, async (t) => {
      const gate = new Gate();
      t.after(() => gate.releaseAll()); // before the node's stop hook: hooks run in order
      const conveyor = node(t, { concurrency: 3 });
      const TOTAL = 12;
      conveyor.define("block", async (data: { i: number }) => {
        await gate.enter((g) => {
          // Keep the queue saturated: release one only when the limit is reached (or once all have started).
          if (g.started === TOTAL) g.releaseAll();
          else if (g.inFlight >= 3) g.releaseOne();
        });
        return data.i;
      });
      await conveyor.start();
      const outcomes = await conveyor.enqueueMany(
        Array.from({ length: TOTAL }, (_, i) => ({ type: "block", data: { i } })),
      );
      const results = await Promise.all(outcomes.map((o) => conveyor.result(o.task.id, { timeoutMs: 8000 })));
      assert.deepEqual(
        results,
        Array.from({ length: TOTAL }, (_, i) => i),
      );
      assert.equal(gate.started, TOTAL);
      assert.equal(gate.max, 3, "exactly 3 at once: never more, and the limit is used");
      const { tasks } = await conveyor.list({ states: ["completed"], limit: 100 });
      assert.equal(tasks.length, TOTAL);
    });

    test("per-queue concurrency: queue slow runs 1 at a time while the default queue runs 3, independently", {
      timeout: 10_000,
    }, async (t) => {
      const slow = new Gate();
      const fast = new Gate();
      t.after(() => (slow.releaseAll(), fast.releaseAll())); // before the node's stop hook: hooks run in order
      const conveyor = node(t, { concurrency: 3, queues: { slow: { concurrency: 1 } } });
      const fastSaturated = deferred();
      const slowStarted = deferred();
      conveyor.define(
        "slow.job",
        async (data: { i: number }) => {
          await slow.enter((g) => {
            slowStarted.resolve();
            // Hold the first slow task until the default queue was seen full, then let them through one by one.
            if (g.started > 1) g.releaseOne();
          });
          return data.i;
        },
        { queue: "slow" },
      );
      conveyor.define("fast.job", async (data: { i: number }) => {
        await fast.enter((g) => {
          if (g.inFlight === 3) fastSaturated.resolve();
          if (g.started === 6) g.releaseAll();
          else if (g.inFlight >= 3) g.releaseOne();
        });
        return data.i;
      });
      await conveyor.start();
      const slowTasks = await conveyor.enqueueMany([0, 1, 2, 3].map((i) => ({ type: "slow.job", data: { i } })));
      assert.ok(slowTasks.every((o) => o.task.queue === "slow"));
      await slowStarted.promise;
      const fastTasks = await conveyor.enqueueMany([0, 1, 2, 3, 4, 5].map((i) => ({ type: "fast.job", data: { i } })));
      // The default queue fills its 3 slots and drains while the slow queue's single slot stays taken.
      await fastSaturated.promise;
      assert.deepEqual(
        await Promise.all(fastTasks.map((o) => conveyor.result(o.task.id, { timeoutMs: 5000 }))),
        [0, 1, 2, 3, 4, 5],
      );
      assert.equal(slow.inFlight, 1, "the first slow task is still blocked");
      assert.equal(slow.started, 1, "no second slow task started while the first runs");
      slow.releaseOne();
      assert.deepEqual(
        await Promise.all(slowTasks.map((o) => conveyor.result(o.task.id, { timeoutMs: 5000 }))),
        [0, 1, 2, 3],
      );
      assert.equal(slow.max, 1);
      assert.equal(fast.max, 3);
    });

    test("tasks enqueued while a poll's claim is in flight take no slot the claim fills: never more than the concurrency", {
      timeout: 10_000,
    }, async (t) => {
      const gate = new Gate();
      t.after(() => gate.releaseAll()); // before the node's stop hook: hooks run in order
      const conveyor = node(t, { concurrency: 3, pollIntervalMs: 50 });
      let open = false;
      conveyor.define("block", async (data: { i: number }) => {
        await gate.enter((g) => open && g.releaseOne());
        return data.i;
      });
      // The next claim of the queue waits, once it has asked for its slots, until the enqueue below has returned.
      const claim = conveyor.store.taskClaim.bind(conveyor.store);
      let hold: Deferred<void> | null = null;
      const held = deferred();
      const heldClaimDone = deferred();
      conveyor.store.taskClaim = async (params) => {
        const waiting = hold;
        if (waiting === null || params.queue !== "default") return claim(params);
        hold = null;
        held.resolve();
        await waiting.promise;
        const claimed = await claim(params);
        heldClaimDone.resolve();
        return claimed;
      };
      await conveyor.start();
      const release = deferred();
      hold = release;
      await held.promise; // a poll's claim, for 3 slots, is in flight
      const outcomes = await conveyor.enqueueMany([0, 1, 2, 3, 4, 5].map((i) => ({ type: "block", data: { i } })));
      release.resolve();
      await heldClaimDone.promise;
      await new Promise((resolve) => setImmediate(resolve)); // the claimed tasks' handlers enter the gate
      assert.equal(gate.max, 3, `${gate.max} tasks ran at once at concurrency 3`);
      open = true;
      gate.releaseAll();
      assert.deepEqual(
        await Promise.all(outcomes.map((o) => conveyor.result(o.task.id, { timeoutMs: 5000 }))),
        [0, 1, 2, 3, 4, 5],
      );
      assert.equal(gate.max, 3);
    });

    test("priorities: higher priority first, then enqueue order (FIFO) within a priority", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t, { concurrency: 1 });
      const order: string[] = [];
      conveyor.define("job", (data: { name: string }) => {
        order.push(data.name);
        return data.name;
      });
      await conveyor.start();
      await conveyor.pauseQueue("default");
      const plan: [string, number][] = [
        ["a0", 0],
        ["b5", 5],
        ["c0", 0],
        ["d10", 10],
        ["e5", 5],
        ["f-1", -1],
        ["g10", 10],
        ["h0", 0],
      ];
      const ids: number[] = [];
      for (const [name, priority] of plan) {
        const task = await conveyor.enqueue("job", { name }, { priority });
        assert.equal(task.state, "queued");
        ids.push(task.id);
      }
      const [stats] = (await conveyor.queues()).filter((q) => q.queue === "default");
      assert.equal(stats?.paused, true);
      assert.equal(order.length, 0, "nothing runs while the queue is paused");
      await conveyor.resumeQueue("default");
      await Promise.all(ids.map((id) => conveyor.result(id, { timeoutMs: 5000 })));
      assert.deepEqual(order, ["d10", "g10", "b5", "e5", "a0", "c0", "h0", "f-1"]);
    });

    // No backstop poll within the test's time (a minute): a delayed task can only run on time because the scheduler
    // sleeps until its runAt; leaning on a poll, it would not run before the test's own timeout.
    test("delay: a delayed task is scheduled, does not start before its runAt, and runs shortly after", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t, { pollIntervalMs: 60_000 });
      const startedAt = new Map<number, number>();
      conveyor.define("later", (_data, ctx) => {
        startedAt.set(ctx.id, Date.now());
        return "ran";
      });
      await conveyor.start();
      const task = await conveyor.enqueue("later", null, { delay: 300 });
      assert.equal(task.state, "scheduled");
      assert.ok(task.runAt.getTime() - task.createdAt.getTime() >= 300);
      assert.equal((await conveyor.get(task.id))?.state, "scheduled");
      assert.equal(await conveyor.result(task.id), "ran");
      const started = startedAt.get(task.id)!;
      // A lower bound only (timers never fire early, so a slow machine cannot break it).
      assert.ok(started >= task.runAt.getTime(), `started ${task.runAt.getTime() - started} ms before its runAt`);
    });

    test("runAt in the future: scheduled, started at or after runAt, and it does not block immediate tasks", {
      timeout: 10_000,
    }, async (t) => {
      // No backstop poll within the test's time, as above.
      const conveyor = node(t, { concurrency: 1, pollIntervalMs: 60_000 });
      const startedAt = new Map<string, number>();
      conveyor.define("job", (data: { name: string }) => {
        startedAt.set(data.name, Date.now());
        return data.name;
      });
      await conveyor.start();
      const runAt = new Date(Date.now() + 400);
      const delayed = await conveyor.enqueue("job", { name: "delayed" }, { runAt });
      assert.equal(delayed.state, "scheduled");
      assert.equal(delayed.runAt.getTime(), runAt.getTime());
      const now = await conveyor.enqueue("job", { name: "now" });
      assert.equal(await conveyor.result(now.id, { timeoutMs: 5000 }), "now");
      assert.ok(startedAt.get("now")! < runAt.getTime(), "the immediate task ran before the delayed one was due");
      assert.equal((await conveyor.get(delayed.id))?.state, "scheduled");
      assert.equal(await conveyor.result(delayed.id), "delayed");
      const started = startedAt.get("delayed")!;
      // A lower bound only (timers never fire early, so a slow machine cannot break it).
      assert.ok(started >= runAt.getTime(), `started ${runAt.getTime() - started} ms early`);
    });
  });
}

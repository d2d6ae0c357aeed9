/**
 * Enqueue straight into a free slot: a started node that has an idle slot for a new task starts it in the
 * insert's own transaction, without a claim; with no slot, a paused queue or a backlog, the task queues. On SQLite
 * and on PostgreSQL.
 */
import { after, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { StoreUnavailableError } from "../core/store-unavailable.ts";
import type { Task } from "../core/task.ts";
import type { Conveyor } from "./conveyor.ts";
import type { ConveyorOptions } from "./options.ts";
import { deferred, leakedResources } from "./fixtures/runtime-handlers.ts";
import { testNode, testStores } from "./fixtures/test-node.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket, thread or handle behind"));

/**
 * Start the node and let its workers look at their queues once: until then they assume a backlog (tasks
 * may wait in the store from before) and start nothing directly. A warm-up task run to the end shows it.
 */
async function startIdle(conveyor: Conveyor, queue?: string): Promise<void> {
  conveyor.define("warm.up", () => null, queue === undefined ? {} : { queue });
  await conveyor.start();
  const warmUp = await conveyor.enqueue("warm.up");
  await conveyor.result(warmUp.id, { timeoutMs: 5000 });
}

for (const store of await testStores("handoff")) {
  describe(store, () => {
    const node = (t: TestContext, options?: ConveyorOptions) => testNode(t, store, options);

    test("an idle node starts a task it enqueues in the insert itself: running on it, attempt 1, no claim", {
      timeout: 10_000,
    }, async (t) => {
      // No backstop poll within the test (a minute): a claim now could only come from the enqueue.
      const conveyor = node(t, { pollIntervalMs: 60_000 });
      conveyor.define("echo", (data: { n: number }) => data.n * 2);
      await startIdle(conveyor);
      let claims = 0;
      const claim = conveyor.store.taskClaim.bind(conveyor.store);
      conveyor.store.taskClaim = (params) => (claims++, claim(params));

      const task = await conveyor.enqueue("echo", { n: 21 });
      assert.deepEqual(
        { state: task.state, attempt: task.attempt, node: task.node },
        { state: "running", attempt: 1, node: conveyor.nodeId },
      );
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), 42);
      assert.deepEqual(
        (await conveyor.taskEvents(task.id)).map((e) => e.type),
        ["task.created", "task.started", "task.completed"],
      );
      assert.equal(claims, 0, "the task was never claimed");
    });

    test("enqueueMany starts only as many as there are idle slots; the rest queue and run after, in order", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t, { concurrency: 2 });
      const release = deferred();
      const started: number[] = [];
      let running = 0;
      let most = 0;
      conveyor.define("work", async (data: { i: number }) => {
        started.push(data.i);
        most = Math.max(most, ++running);
        await release.promise;
        running--;
      });
      await startIdle(conveyor);
      const outcomes = await conveyor.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ type: "work", data: { i } })));
      assert.deepEqual(
        outcomes.map((o) => o.task.state),
        ["running", "running", "queued", "queued", "queued", "queued"],
      );
      release.resolve();
      await Promise.all(outcomes.map((o) => conveyor.result(o.task.id, { timeoutMs: 5000 })));
      assert.deepEqual(started, [0, 1, 2, 3, 4, 5], "queued tasks run in order after the started ones");
      assert.equal(most, 2, "never more than the concurrency");
    });

    test("a task enqueued while others wait in the queue does not overtake them", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t, { concurrency: 1 });
      const order: string[] = [];
      conveyor.define("step", (data: { name: string }) => void order.push(data.name));
      // Queued before the node starts: its worker must claim it before starting anything directly.
      const waiting = await conveyor.enqueue("step", { name: "waiting" });
      await conveyor.start();
      const late = await conveyor.enqueue("step", { name: "late" });
      assert.equal(late.state, "queued", "a slot is free, but a task waits for it");
      await Promise.all([waiting, late].map((task: Task) => conveyor.result(task.id, { timeoutMs: 5000 })));
      assert.deepEqual(order, ["waiting", "late"]);
    });

    test("nothing starts directly in a paused queue, for a type this node does not run, or before start()", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      conveyor.define("here", () => "ok", { queue: "mine" });
      const before = await conveyor.enqueue("here");
      assert.equal(before.state, "queued", "not started yet: nothing may run");
      await startIdle(conveyor, "mine");
      assert.equal(await conveyor.result(before.id, { timeoutMs: 5000 }), "ok");

      await conveyor.pauseQueue("mine");
      const paused = await conveyor.enqueue("here");
      assert.equal(paused.state, "queued");
      const elsewhere = await conveyor.enqueue("unknown.type", null, { queue: "mine" });
      assert.equal(elsewhere.state, "queued");
      const otherQueue = await conveyor.enqueue("here", null, { queue: "other" });
      assert.equal(otherQueue.state, "queued", "no worker of this node serves queue other");

      await conveyor.resumeQueue("mine");
      assert.equal(
        await conveyor.result(paused.id, { timeoutMs: 5000 }),
        "ok",
        "the slot reserved for it was given back",
      );
      assert.equal((await conveyor.get(elsewhere.id))?.state, "queued");
    });

    test("a task started by an insert that finishes after the node began stopping is handed back, not run", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      let runs = 0;
      conveyor.define("late", () => void runs++);
      await startIdle(conveyor);
      const { store } = conveyor;
      // The insert is held until the node's workers have stopped (nodeRemove comes after them, before the store closes).
      const gate = deferred();
      const insert = store.taskInsertMany.bind(store);
      store.taskInsertMany = async (params) => (await gate.promise, insert(params));
      let handedBack: Promise<unknown> = Promise.resolve();
      const release = store.taskRelease.bind(store);
      store.taskRelease = (params) => (handedBack = release(params));
      const enqueued = conveyor.enqueue("late");
      const nodeRemove = store.nodeRemove.bind(store);
      let stored: Task | null = null;
      store.nodeRemove = async (params) => {
        gate.resolve();
        const task = await enqueued;
        await handedBack;
        stored = await store.taskGet({ id: task.id });
        return nodeRemove(params);
      };
      await new Promise((resolve) => setImmediate(resolve));
      await conveyor.stop();
      assert.equal((await enqueued).state, "running", "the insert started it: its slot was reserved before the stop");
      assert.equal(stored!.state, "queued", "handed back to the queue");
      assert.equal(runs, 0);
    });

    test("a stop while the store is unavailable still stops the node, its tasks signalled and its resources closed", async (t) => {
      const conveyor = node(t);
      const started = deferred();
      let reason: unknown = null;
      conveyor.define("waits", (_data, ctx) => {
        started.resolve();
        return new Promise<void>((resolve) =>
          ctx.signal.addEventListener("abort", () => {
            reason = ctx.signal.reason;
            resolve();
          }),
        );
      });
      await startIdle(conveyor);
      await conveyor.enqueue("waits");
      await started.promise;
      const { store } = conveyor;
      const gone = () => Promise.reject(new StoreUnavailableError("the store does not answer"));
      store.taskRelease = gone;
      store.nodeRemove = gone;
      await conveyor.stop();
      assert.equal(reason, "shutdown");
      assert.equal(conveyor.state, "stopped");
    });
  });
}

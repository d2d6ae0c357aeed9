/**
 * Conveyor behaviour: cancelling queued, scheduled and running tasks, inline and in worker threads; on SQLite and on
 * PostgreSQL.
 */
import { after, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { deferred, type Deferred, leakedResources, logWatcher, threadResources } from "./fixtures/runtime-handlers.ts";
import { testNode, testStores } from "./fixtures/test-node.ts";
import type { TaskHandler } from "./handler.ts";
import type { ConveyorOptions } from "./options.ts";

const FIXTURES = new URL("./fixtures/runtime-handlers.ts", import.meta.url);

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket, thread or handle behind"));

/** A handler that says when it started, then waits for its stop signal, records its reason and throws. */
function cancellable(started: Deferred<void>, aborted: Deferred<unknown>): TaskHandler {
  return async (_data, ctx) => {
    started.resolve();
    await new Promise((_resolve, reject) => {
      ctx.signal.addEventListener(
        "abort",
        () => {
          aborted.resolve(ctx.signal.reason);
          reject(new Error("stopped"));
        },
        { once: true },
      );
    });
  };
}

for (const store of await testStores("cancel")) {
  describe(store, () => {
    const node = (t: TestContext, options?: ConveyorOptions) => testNode(t, store, options);

    test("cancel a queued task: cancelled at once, never runs", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      const ran: string[] = [];
      conveyor.define("job", (data: { name: string }) => {
        ran.push(data.name);
        return data.name;
      });
      await conveyor.start();
      await conveyor.pauseQueue("default");
      const victim = await conveyor.enqueue("job", { name: "victim" });
      assert.equal(victim.state, "queued");
      const cancelled = await conveyor.cancel(victim.id, "changed my mind");
      assert.equal(cancelled.state, "cancelled");
      assert.equal(cancelled.error?.name, "CancelledError");
      assert.equal(cancelled.error?.message, "changed my mind");
      assert.ok(cancelled.finishedAt !== null);
      await assert.rejects(conveyor.result(victim.id, { timeoutMs: 1000 }), { code: "task_cancelled" });
      await conveyor.resumeQueue("default");
      // A later task on the same queue runs: by then the worker has had its chance to claim the victim.
      const after = await conveyor.enqueue("job", { name: "after" });
      assert.equal(await conveyor.result(after.id, { timeoutMs: 5000 }), "after");
      assert.deepEqual(ran, ["after"]);
      assert.equal((await conveyor.get(victim.id))?.state, "cancelled");
      assert.equal((await conveyor.get(victim.id))?.attempt, 0);
    });

    test("cancel a scheduled task: cancelled at once, never runs when its time comes", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      const ran: string[] = [];
      conveyor.define("job", (data: { name: string }) => {
        ran.push(data.name);
        return data.name;
      });
      await conveyor.start();
      // Due in a second: the cancel must come while it is still scheduled (at 100 ms, a CI run's stall let it start
      // first, and the cancel stopped it running, which is another test's case).
      const victim = await conveyor.enqueue("job", { name: "victim" }, { delay: 1000 });
      assert.equal(victim.state, "scheduled");
      assert.equal((await conveyor.cancel(victim.id)).state, "cancelled");
      // Due after the victim: once it has run, the victim's time has come and gone.
      const later = await conveyor.enqueue("job", { name: "later" }, { delay: 1100 });
      assert.equal(await conveyor.result(later.id, { timeoutMs: 5000 }), "later");
      assert.deepEqual(ran, ["later"]);
      assert.equal((await conveyor.get(victim.id))?.state, "cancelled");
    });

    test("cancel a finished task: returned unchanged; an unknown id: task_not_found", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      conveyor.define("job", () => "done");
      await conveyor.start();
      const task = await conveyor.enqueue("job");
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), "done");
      const after = await conveyor.cancel(task.id);
      assert.equal(after.state, "completed");
      assert.equal(after.result, "done");
      await assert.rejects(conveyor.cancel(999_999), { code: "task_not_found" });
    });

    test("cancel a running inline task: its signal fires with reason cancelled, state cancelled, result rejects", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t, { concurrency: 1 });
      const started = deferred();
      const aborted = deferred<unknown>();
      conveyor.define("cancellable", cancellable(started, aborted), { graceMs: 5000 });
      conveyor.define("next", () => "next");
      await conveyor.start();
      const task = await conveyor.enqueue("cancellable");
      await started.promise;
      const cancelled = await conveyor.cancel(task.id);
      assert.equal(cancelled.state, "cancelled");
      assert.equal(await aborted.promise, "cancelled");
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 1000 }), (error: Error & { code?: string }) => {
        assert.equal(error.code, "task_cancelled");
        return true;
      });
      // The handler returned at once: the slot frees well before the (long) grace period.
      const next = await conveyor.enqueue("next");
      assert.equal(await conveyor.result(next.id, { timeoutMs: 2000 }), "next");
      const after = (await conveyor.get(task.id))!;
      assert.equal(
        after.state,
        "cancelled",
        "the handler's rejection after the cancel does not turn it into a failure or retry",
      );
      assert.equal(after.attempt, 1);
      assert.equal(after.error?.name, "CancelledError");
    });

    test("cancel a running inline task that ignores its signal: abandoned after graceMs, late result discarded, slot freed", {
      timeout: 10_000,
    }, async (t) => {
      const gate = deferred();
      t.after(() => gate.resolve()); // before the node's stop hook: hooks run in order
      const conveyor = node(t, { concurrency: 1 });
      const started = deferred();
      const returned = deferred();
      let sawAbort: unknown = null;
      conveyor.define(
        "stubborn",
        async (_data, ctx) => {
          started.resolve();
          ctx.signal.addEventListener("abort", () => (sawAbort = ctx.signal.reason), { once: true });
          await gate.promise;
          returned.resolve();
          return "late result";
        },
        { graceMs: 150 },
      );
      let nextStartedAt = 0;
      conveyor.define("next", () => {
        nextStartedAt = Date.now();
        return "next";
      });
      await conveyor.start();
      const task = await conveyor.enqueue("stubborn");
      await started.promise;
      const cancelledAt = Date.now();
      assert.equal((await conveyor.cancel(task.id)).state, "cancelled");
      assert.equal(sawAbort, "cancelled");
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 1000 }), { code: "task_cancelled" });
      // Concurrency 1: the next task can only start once the stubborn one's slot is given up.
      const next = await conveyor.enqueue("next");
      assert.equal(await conveyor.result(next.id, { timeoutMs: 3000 }), "next");
      // A lower bound, the very thing under test: the slot is not given up before graceMs (timers never fire early, so a
      // slow machine cannot break it; 5 ms for the clock's granularity).
      assert.ok(
        nextStartedAt - cancelledAt >= 150 - 5,
        `slot freed ${nextStartedAt - cancelledAt} ms after the cancel, before graceMs`,
      );
      assert.equal(returned.settled, false, "the stubborn handler is still running: it was abandoned, not awaited");
      // Now let the abandoned handler return late: its value must go nowhere.
      gate.resolve();
      await returned.promise;
      await new Promise((resolve) => setImmediate(resolve));
      await conveyor.waitForFinish(next.id, 1000);
      const after = (await conveyor.get(task.id))!;
      assert.equal(after.state, "cancelled");
      assert.equal(after.result, null);
      const events = (await conveyor.taskEvents(task.id)).map((e) => e.type);
      assert.ok(!events.includes("task.completed") && !events.includes("task.failed"), `events: ${events.join(", ")}`);
    });

    test("cancel a running thread task that busy-loops: the thread is terminated after graceMs and the next task runs", {
      timeout: 15_000,
    }, async (t) => {
      const logs = logWatcher();
      const conveyor = node(t, { concurrency: 1, logger: pino({ level: "info" }, logs.stream) });
      conveyor.define("spin", { module: FIXTURES, export: "spinIgnoringSignal" }, { graceMs: 150 });
      let threadsWhenNextRan: string[] | null = null;
      let nextStartedAt = 0;
      conveyor.define("next", () => {
        nextStartedAt = Date.now();
        threadsWhenNextRan = threadResources();
        return "next";
      });
      await conveyor.start();
      assert.deepEqual(threadResources(), []);
      const task = await conveyor.enqueue("spin");
      await logs.waitFor("spinning");
      assert.ok(threadResources().length > 0, "the handler runs in a worker thread");
      const cancelledAt = Date.now();
      assert.equal((await conveyor.cancel(task.id)).state, "cancelled");
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 1000 }), { code: "task_cancelled" });
      const next = await conveyor.enqueue("next");
      assert.equal(await conveyor.result(next.id, { timeoutMs: 5000 }), "next");
      // A lower bound only, as above.
      assert.ok(nextStartedAt - cancelledAt >= 150 - 5, "the busy thread got its grace period");
      assert.deepEqual(threadsWhenNextRan, [], "the thread was gone before its slot was reused");
      assert.deepEqual(threadResources(), []);
      const after = (await conveyor.get(task.id))!;
      assert.equal(after.state, "cancelled");
      assert.equal(after.result, null);
    });

    test("a thread task runs and returns its value", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      conveyor.define("double", { module: FIXTURES, export: "double" });
      await conveyor.start();
      const task = await conveyor.enqueue("double", { n: 21 });
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), 42);
      assert.deepEqual(threadResources(), []);
    });

    // On SQLite the cancel reaches the runner by its backstop poll (each node has its own in-process bus); on PostgreSQL
    // by the bus (NOTIFY).
    test("cancel from another Conveyor on the same store: the running handler is signalled", {
      timeout: 10_000,
    }, async (t) => {
      const runner = node(t);
      const other = node(t);
      const started = deferred();
      const aborted = deferred<unknown>();
      runner.define("cancellable", cancellable(started, aborted));
      await runner.start();
      const task = await runner.enqueue("cancellable");
      await started.promise;
      assert.equal((await other.cancel(task.id)).state, "cancelled");
      assert.equal(await aborted.promise, "cancelled");
      await assert.rejects(runner.result(task.id, { timeoutMs: 2000 }), { code: "task_cancelled" });
      assert.equal((await runner.get(task.id))?.state, "cancelled");
    });
  });
}

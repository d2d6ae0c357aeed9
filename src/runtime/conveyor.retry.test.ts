/**
 * Conveyor behaviour: retries with exponential backoff and jitter, final failures, and timeouts; on SQLite and on
 * PostgreSQL.
 */
import { after, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { UnrecoverableError } from "../core/errors.ts";
import type { TaskEvent } from "../core/task.ts";
import type { ConveyorOptions } from "./options.ts";
import { deferred, leakedResources } from "./fixtures/runtime-handlers.ts";
import { testNode, testStores } from "./fixtures/test-node.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket, thread or handle behind"));

/** The delay a retrying event announces: its runAt minus the time the attempt failed (the event's time). */
function announcedDelay(event: TaskEvent): number {
  return Date.parse(String((event.data as { runAt: string }).runAt)) - event.at.getTime();
}

for (const store of await testStores("retries")) {
  describe(store, () => {
    const node = (t: TestContext, options?: ConveyorOptions) => testNode(t, store, options);

    test("retries with backoff: fails twice, completes on attempt 3; history of 2 errors; delays grow exponentially", {
      timeout: 20_000,
    }, async (t) => {
      // The backstop poll is out of the way: a retry runs because the scheduler sleeps until its runAt, or not at all.
      const conveyor = node(t, { pollIntervalMs: 60_000 });
      const backoff = { baseMs: 40, jitter: 0.25, maxMs: 10_000 };
      const starts: { attempt: number; at: number }[] = [];
      conveyor.define(
        "flaky",
        (_data, ctx) => {
          starts.push({ attempt: ctx.attempt, at: Date.now() });
          if (ctx.attempt < 3) throw new Error(`flake ${ctx.attempt}`);
          return { ok: ctx.attempt };
        },
        { maxAttempts: 5, backoff },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("flaky", null);
      assert.equal(task.maxAttempts, 5);
      assert.deepEqual(await conveyor.result(task.id, { timeoutMs: 10_000 }), { ok: 3 });
      const done = (await conveyor.get(task.id))!;
      assert.equal(done.state, "completed");
      assert.equal(done.attempt, 3);
      assert.deepEqual(
        done.errors.map((e) => [e.attempt, e.message]),
        [
          [1, "flake 1"],
          [2, "flake 2"],
        ],
      );
      assert.deepEqual(
        starts.map((s) => s.attempt),
        [1, 2, 3],
      );
      // Each failure's delay, as computed and stored: base·2^(n−1), less up to 25 % jitter.
      const retrying = (await conveyor.taskEvents(task.id)).filter((e) => e.type === "task.retrying");
      const delays = retrying.map(announcedDelay);
      assert.equal(delays.length, 2);
      delays.forEach((delay, i) => {
        const raw = backoff.baseMs * 2 ** i;
        assert.ok(delay >= Math.round(raw * (1 - backoff.jitter)) && delay <= raw, `delay ${i + 1} is ${delay} ms`);
      });
      assert.ok(delays[1]! > delays[0]!, `delays should grow: ${delays.join(", ")}`);
      // And each retry waited for its runAt: a timer never fires early, so this holds however slow the machine is.
      retrying.forEach((event, i) => {
        const runAt = Date.parse(String((event.data as { runAt: string }).runAt));
        assert.ok(
          starts[i + 1]!.at >= runAt,
          `attempt ${i + 2} started ${runAt - starts[i + 1]!.at} ms before its runAt`,
        );
      });
    });

    test("the task's retry event says when it will run again", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      conveyor.define(
        "once",
        (_data, ctx) => {
          if (ctx.attempt === 1) throw new Error("first");
          return "second";
        },
        { backoff: { baseMs: 30, jitter: 0 } },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("once");
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), "second");
      const events = (await conveyor.taskEvents(task.id)).map((e) => e.type);
      assert.deepEqual(
        events.filter((type) => type !== "task.promoted"),
        ["task.created", "task.started", "task.retrying", "task.started", "task.completed"],
      );
      const retrying = (await conveyor.taskEvents(task.id)).find((e) => e.type === "task.retrying")!;
      assert.equal(announcedDelay(retrying), 30, "runAt is the backoff (no jitter) after the failure");
    });

    test("per-task backoffMs overrides the type's backoff", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      const starts: number[] = [];
      conveyor.define(
        "slowBackoff",
        (_data, ctx) => {
          starts.push(Date.now());
          if (ctx.attempt === 1) throw new Error("once");
          return "done";
        },
        { maxAttempts: 2, backoff: { baseMs: 60_000, jitter: 0 } },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("slowBackoff", null, { backoffMs: 30 });
      assert.equal(task.backoffMs, 30);
      // With the type's 60 s backoff this would time out.
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), "done");
      const retrying = (await conveyor.taskEvents(task.id)).find((e) => e.type === "task.retrying")!;
      const delay = announcedDelay(retrying);
      assert.ok(
        delay >= 24 && delay <= 30,
        `delay ${delay} ms is not the task's own 30 ms backoff (default jitter 0.2)`,
      );
      const gap = starts[1]! - starts[0]!;
      // A lower bound only (a timer never fires early): the second attempt waited for the backoff.
      assert.ok(gap >= delay, `gap ${gap} ms is below the backoff of ${delay} ms`);
    });

    test("maxAttempts exhausted: failed with the last error; result rejects with task_failed", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      let calls = 0;
      conveyor.define(
        "doomed",
        (_data, ctx) => {
          calls++;
          throw new RangeError(`boom ${ctx.attempt}`);
        },
        { maxAttempts: 3, backoff: { baseMs: 10 } },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("doomed");
      await assert.rejects(
        conveyor.result(task.id, { timeoutMs: 5000 }),
        (error: Error & { code?: string; cause?: unknown }) => {
          assert.equal(error.code, "task_failed");
          assert.match(error.message, /boom 3/);
          return true;
        },
      );
      const failed = (await conveyor.get(task.id))!;
      assert.equal(failed.state, "failed");
      assert.equal(failed.attempt, 3);
      assert.equal(calls, 3);
      assert.equal(failed.error?.name, "RangeError");
      assert.equal(failed.error?.message, "boom 3");
      assert.equal(failed.error?.attempt, 3);
      assert.deepEqual(
        failed.errors.map((e) => e.message),
        ["boom 1", "boom 2", "boom 3"],
      );
      assert.ok(failed.finishedAt !== null);
    });

    test("maxAttempts given at enqueue overrides the type's", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      let calls = 0;
      conveyor.define(
        "doomed",
        () => {
          calls++;
          throw new Error("no");
        },
        { maxAttempts: 5, backoff: { baseMs: 10 } },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("doomed", null, { maxAttempts: 2 });
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 5000 }), { code: "task_failed" });
      assert.equal(calls, 2);
    });

    test("UnrecoverableError fails the task after one attempt, whatever attempts are left", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      let calls = 0;
      conveyor.define(
        "hopeless",
        () => {
          calls++;
          throw new UnrecoverableError("bad card");
        },
        { maxAttempts: 10, backoff: { baseMs: 10 } },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("hopeless");
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 5000 }), { code: "task_failed" });
      const failed = (await conveyor.get(task.id))!;
      assert.equal(failed.state, "failed");
      assert.equal(failed.attempt, 1);
      assert.equal(calls, 1);
      assert.equal(failed.error?.name, "UnrecoverableError");
      assert.equal(failed.error?.message, "bad card");
    });

    /** A handler that honours its signal on the first attempt (reporting the reason) and succeeds on the second. */
    function honoursSignalOnce(reasons: unknown[]) {
      return async (_data: unknown, ctx: { attempt: number; signal: AbortSignal }) => {
        if (ctx.attempt > 1) return `ok on ${ctx.attempt}`;
        await new Promise((_resolve, reject) => {
          ctx.signal.addEventListener(
            "abort",
            () => {
              reasons.push(ctx.signal.reason);
              reject(new Error("gave up"));
            },
            { once: true },
          );
        });
        return "unreachable";
      };
    }

    test("timeout per type: the signal fires with reason timeout, the attempt fails as TimeoutError and is retried", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      const reasons: unknown[] = [];
      conveyor.define("slow", honoursSignalOnce(reasons), {
        timeoutMs: 80,
        maxAttempts: 2,
        graceMs: 300,
        backoff: { baseMs: 10 },
      });
      await conveyor.start();
      const task = await conveyor.enqueue("slow");
      assert.equal(task.timeoutMs, 80);
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), "ok on 2");
      assert.deepEqual(reasons, ["timeout"]);
      const done = (await conveyor.get(task.id))!;
      assert.equal(done.attempt, 2);
      assert.equal(done.errors.length, 1);
      assert.equal(done.errors[0]?.name, "TimeoutError");
      assert.equal(done.errors[0]?.attempt, 1);
      assert.match(done.errors[0]?.message ?? "", /timed out after 80 ms/);
    });

    test("timeout per task: timeoutMs at enqueue applies to a type without one", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      const reasons: unknown[] = [];
      conveyor.define("slow", honoursSignalOnce(reasons), { maxAttempts: 2, graceMs: 300, backoff: { baseMs: 10 } });
      await conveyor.start();
      const task = await conveyor.enqueue("slow", null, { timeoutMs: 60 });
      assert.equal(task.timeoutMs, 60);
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), "ok on 2");
      assert.deepEqual(reasons, ["timeout"]);
      assert.equal((await conveyor.get(task.id))?.errors[0]?.name, "TimeoutError");
    });

    test("timeout: a handler that ignores its signal is abandoned after graceMs; with maxAttempts 1 the task fails", {
      timeout: 10_000,
    }, async (t) => {
      const never = deferred();
      t.after(() => never.resolve()); // before the node's stop hook: hooks run in order
      const conveyor = node(t);
      const started = deferred<number>();
      let aborted: unknown = null;
      conveyor.define(
        "stubborn",
        async (_data, ctx) => {
          started.resolve(Date.now());
          ctx.signal.addEventListener("abort", () => (aborted = ctx.signal.reason), { once: true });
          await never.promise;
          return "late";
        },
        { timeoutMs: 60, graceMs: 150, maxAttempts: 1 },
      );
      await conveyor.start();
      const task = await conveyor.enqueue("stubborn");
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 5000 }), { code: "task_failed" });
      const endedAt = Date.now();
      const failed = (await conveyor.get(task.id))!;
      assert.equal(aborted, "timeout");
      assert.equal(failed.state, "failed");
      assert.equal(failed.attempt, 1);
      assert.equal(failed.error?.name, "TimeoutError");
      assert.match(failed.error?.message ?? "", /abandoned/);
      // A lower bound only, which a slow machine cannot break (timers never fire early); 5 ms for the handler's start
      // after the timeout's timer was set.
      assert.ok(endedAt - (await started.promise) >= 60 + 150 - 5, "not abandoned before timeout + grace");
      assert.equal(failed.result, null);
    });

    test("retry() runs a failed task again from attempt 1; an active task cannot be retried (invalid_state)", {
      timeout: 10_000,
    }, async (t) => {
      const gate = deferred();
      t.after(() => gate.resolve()); // before the node's stop hook: hooks run in order
      const conveyor = node(t);
      let fail = true;
      conveyor.define(
        "fickle",
        (_data, ctx) => {
          if (fail) throw new Error(`failed on ${ctx.attempt}`);
          return `ok on ${ctx.attempt}`;
        },
        { maxAttempts: 1 },
      );
      conveyor.define("blocked", () => gate.promise);
      await conveyor.start();
      const task = await conveyor.enqueue("fickle");
      await assert.rejects(conveyor.result(task.id, { timeoutMs: 5000 }), { code: "task_failed" });
      fail = false;
      const rerun = await conveyor.rerun(task.id);
      assert.equal(rerun.state, "queued");
      assert.equal(rerun.attempt, 0);
      assert.equal(await conveyor.result(task.id, { timeoutMs: 5000 }), "ok on 1");
      await assert.rejects(conveyor.rerun(task.id), { code: "invalid_state" });
      const blocked = await conveyor.enqueue("blocked");
      await assert.rejects(conveyor.rerun(blocked.id), { code: "invalid_state" });
      await assert.rejects(conveyor.retry(999_999), { code: "task_not_found" });
    });
  });
}

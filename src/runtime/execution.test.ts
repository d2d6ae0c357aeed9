/**
 * Execution, one run of one attempt: what the handler gets, how its ending becomes the outcome, and how a stop works
 * (the signal at once; after graceMs an inline handler is abandoned, a thread terminated). Grace periods are checked
 * as lower bounds only, which a slow machine cannot break; "not yet" is a handler still pending after a stop whose
 * grace is a minute.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { Json, Task, TaskProgress } from "../core/task.ts";
import { Definitions } from "./definitions.ts";
import { Execution } from "./execution.ts";
import { deferred, leakedResources, threadResources } from "./fixtures/runtime-handlers.ts";
import type { TaskHandler, Log, TaskTypeOptions, ThreadHandlerRef } from "./handler.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, thread or handle behind"));

const FIXTURES = new URL("./fixtures/runtime-handlers.ts", import.meta.url);

function task(overrides: Partial<Task> = {}): Task {
  const now = new Date();
  return {
    id: 7,
    queue: "default",
    type: "job",
    data: { n: 1 },
    priority: 0,
    state: "running",
    attempt: 2,
    maxAttempts: 3,
    stalls: 0,
    runAt: now,
    key: null,
    progress: null,
    result: null,
    error: null,
    errors: [],
    timeoutMs: null,
    backoffMs: null,
    node: "n1",
    createdAt: now,
    startedAt: now,
    finishedAt: null,
    ...overrides,
  };
}

/** Hooks that record progress and log lines; `logged(msg)` resolves once the handler logged `msg`. */
function hooks() {
  const progress: TaskProgress[] = [];
  const lines: string[] = [];
  const waiters = new Map<string, () => void>();
  let loggers = 0;
  const log = (msg: string) => {
    lines.push(msg);
    waiters.get(msg)?.();
  };
  const logger: Log = { debug: log, info: log, warn: log, error: log };
  return {
    progress,
    lines,
    get loggers() {
      return loggers;
    },
    logged: (msg: string) =>
      new Promise<void>((resolve) => (lines.includes(msg) ? resolve() : waiters.set(msg, resolve))),
    hooks: {
      onProgress: (_task: Task, value: TaskProgress) => void progress.push(value),
      logger: () => (loggers++, logger),
    },
  };
}

function execution(
  handler: TaskHandler | ThreadHandlerRef,
  options: TaskTypeOptions = {},
  recorder = hooks(),
  of = task(),
): Execution {
  const definition = new Definitions().define(of.type, handler, options);
  return new Execution(of, definition, recorder.hooks);
}

test("a handler's return value is the outcome; it sees the task's data and context", async () => {
  let seen: unknown = null;
  const run = execution((data, ctx) => {
    seen = { data, id: ctx.id, type: ctx.type, queue: ctx.queue, attempt: ctx.attempt, max: ctx.maxAttempts };
    return { ok: true };
  });
  assert.deepEqual(await run.outcome, { kind: "returned", value: { ok: true } });
  assert.deepEqual(seen, { data: { n: 1 }, id: 7, type: "job", queue: "default", attempt: 2, max: 3 });
  assert.equal(run.stopReason, null);
});

test("a handler that throws, at once or later, ends as threw with its error", async () => {
  const now = new RangeError("at once");
  assert.deepEqual(
    await execution(() => {
      throw now;
    }).outcome,
    { kind: "threw", error: now },
  );
  const later = new Error("later");
  assert.deepEqual(
    await execution(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      throw later;
    }).outcome,
    { kind: "threw", error: later },
  );
});

test("progress is clamped to 0–100 and carries its info; a non-number is refused to the handler", async () => {
  const recorder = hooks();
  const run = execution(
    (_data, ctx) => {
      ctx.progress(150, { step: "over" });
      ctx.progress(-3);
      ctx.progress(42.5);
      assert.throws(() => ctx.progress(Number.NaN), { name: "TypeError", message: "progress must be a finite number" });
      assert.throws(() => ctx.progress("50" as unknown as number), TypeError);
      return null;
    },
    {},
    recorder,
  );
  assert.equal((await run.outcome).kind, "returned");
  assert.deepEqual(recorder.progress, [{ percent: 100, info: { step: "over" } }, { percent: 0 }, { percent: 42.5 }]);
});

test("the handler's logger is made only if it logs", async () => {
  const quiet = hooks();
  await execution(() => null, {}, quiet).outcome;
  assert.equal(quiet.loggers, 0);
  const chatty = hooks();
  await execution(
    (_data, ctx) => {
      ctx.log.info("one");
      ctx.log.warn("two");
      return null;
    },
    {},
    chatty,
  ).outcome;
  assert.equal(chatty.loggers, 1, "one logger for the whole run");
  assert.deepEqual(chatty.lines, ["one", "two"]);
});

test("stop fires the signal at once with its reason; a handler that honours it settles the outcome", async () => {
  const started = deferred();
  const run = execution(
    async (_data, ctx) => {
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      return `stopped: ${String(ctx.signal.reason)}`;
    },
    { graceMs: 60_000 },
  );
  await started.promise;
  run.stop("timeout");
  run.stop("cancelled"); // only the first reason counts
  assert.equal(run.stopReason, "timeout");
  assert.deepEqual(await run.outcome, { kind: "returned", value: "stopped: timeout" });
});

test("a stop before the handler looked at its signal still reaches it", async () => {
  const gate = deferred();
  const run = execution(
    async (_data, ctx) => {
      await gate.promise;
      return ctx.signal.aborted ? ctx.signal.reason : "not aborted";
    },
    { graceMs: 60_000 },
  );
  run.stop("shutdown");
  gate.resolve();
  assert.deepEqual(await run.outcome, { kind: "returned", value: "shutdown" });
});

test("an inline handler that ignores the signal is abandoned after graceMs, and its late result is discarded", {
  timeout: 10_000,
}, async () => {
  const gate = deferred<Json>();
  let aborted: unknown = null;
  const run = execution(
    async (_data, ctx) => {
      ctx.signal.addEventListener("abort", () => (aborted = ctx.signal.reason), { once: true });
      return gate.promise;
    },
    { graceMs: 50 },
  );
  await new Promise((resolve) => setImmediate(resolve));
  const stoppedAt = performance.now();
  run.stop("cancelled");
  assert.equal(aborted, "cancelled", "the signal fired at once");
  assert.deepEqual(await run.outcome, { kind: "ended", how: "abandoned" });
  // A lower bound only (a timer never fires early; 1 ms for the clocks' granularity).
  assert.ok(performance.now() - stoppedAt >= 49, `abandoned after ${performance.now() - stoppedAt} ms`);
  assert.equal(gate.settled, false, "the handler is still running: abandoned, not awaited");
  gate.resolve("late");
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(await run.outcome, { kind: "ended", how: "abandoned" }, "the late result changed nothing");
});

test("a stopped inline handler is not abandoned before graceMs", async () => {
  const gate = deferred<Json>();
  const run = execution(() => gate.promise, { graceMs: 60_000 });
  run.stop("cancelled");
  let settled = false;
  void run.outcome.then(() => (settled = true));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false, "still waiting for the handler within its grace period");
  gate.resolve("in time");
  assert.deepEqual(await run.outcome, { kind: "returned", value: "in time" });
});

test("a thread handler that never yields is terminated after graceMs: the thread is gone", {
  timeout: 15_000,
}, async () => {
  const recorder = hooks();
  const run = execution({ module: FIXTURES, export: "spinIgnoringSignal" }, { graceMs: 100 }, recorder);
  await recorder.logged("spinning");
  assert.ok(threadResources().length > 0, "the handler runs in a worker thread");
  const stoppedAt = performance.now();
  run.stop("timeout");
  assert.deepEqual(await run.outcome, { kind: "ended", how: "terminated" });
  // A lower bound only, as above.
  assert.ok(performance.now() - stoppedAt >= 99, `terminated after ${performance.now() - stoppedAt} ms`);
  assert.deepEqual(threadResources(), [], "the thread was terminated");
});

test("a thread handler returns its value; a stop after it settled changes nothing", async () => {
  const run = execution({ module: FIXTURES, export: "double" }, {}, hooks(), task({ data: { n: 21 } }));
  assert.deepEqual(await run.outcome, { kind: "returned", value: 42 });
  run.stop("cancelled");
  assert.equal(run.stopReason, null, "a settled execution cannot be stopped");
  assert.deepEqual(threadResources(), []);
});

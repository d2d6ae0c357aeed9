import { test } from "node:test";
import assert from "node:assert/strict";
import { ConveyorError, isUnrecoverable } from "../core/errors.ts";
import type { Json } from "../core/task.ts";
import { runInThread, type LogLevel, type ThreadRunParams } from "./thread-runner.ts";

const FIXTURES = new URL("./fixtures/thread-handlers.ts", import.meta.url);
const context = { id: 7, type: "demo", queue: "default", attempt: 2, maxAttempts: 5 };

type Event = ["progress", number, Json | undefined] | ["log", LogLevel, string, Record<string, unknown> | undefined];

/** Starts a run and records what it forwards; `events` emits "event" on each so tests can wait for one. */
function start(exportName: string | undefined, data: Json = null, module: URL | string = FIXTURES) {
  const seen: Event[] = [];
  const events = new (class extends EventTarget {})();
  const params: ThreadRunParams = {
    handler: exportName === undefined ? { module } : { module, export: exportName },
    data,
    context,
    onProgress: (percent, info) => {
      seen.push(["progress", percent, info]);
      events.dispatchEvent(new Event("event"));
    },
    onLog: (level, msg, fields) => {
      seen.push(["log", level, msg, fields]);
      events.dispatchEvent(new Event("event"));
    },
  };
  const run = runInThread(params);
  /** Resolves once a log with this message has been forwarded. */
  const logged = (msg: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (seen.some((e) => e[0] === "log" && e[2] === msg)) {
          events.removeEventListener("event", check);
          resolve();
        }
      };
      events.addEventListener("event", check);
      check();
    });
  return { run, seen, logged };
}

/** Whether any worker-thread resource (its MessagePort or the Worker itself) is still active in this process. */
const threadResources = () => process.getActiveResourcesInfo().filter((r) => /MessagePort|Worker/i.test(r));

test("returns the handler's value (default export) with the context it was given", async () => {
  const { run } = start(undefined, { n: 21 });
  assert.equal(typeof run.threadId, "number");
  assert.ok(run.threadId > 0);
  assert.deepEqual(await run.result, { doubled: 42, ctx: context, aborted: false });
  assert.deepEqual(threadResources(), []);
});

test("forwards progress and log in order; unclonable log fields are replaced, not fatal", async () => {
  const { run, seen } = start("progressAndLog");
  assert.equal(await run.result, "done");
  assert.deepEqual(seen.slice(0, 4), [
    ["progress", 10, undefined],
    ["log", "info", "started", { step: 1 }],
    ["progress", 50, { phase: "half" }],
    ["log", "warn", "careful", undefined],
  ]);
  const odd = seen[4];
  assert.ok(odd !== undefined && odd[0] === "log" && odd[2] === "odd fields");
  assert.match(String(odd[3]?.fieldsDropped), /not structured-cloneable/);
  assert.deepEqual(seen[5], ["progress", 100, { phase: "done" }]);
  assert.equal(seen.length, 6);
});

test("a thrown error surfaces with its name, message and the thread's stack", async () => {
  const { run } = start("throwsTypeError");
  await assert.rejects(run.result, (error: Error) => {
    assert.equal(error.name, "TypeError");
    assert.equal(error.message, "bad input");
    assert.match(error.stack ?? "", /throwsTypeError/);
    assert.equal(isUnrecoverable(error), false);
    return true;
  });
});

test("an UnrecoverableError thrown in the thread stays unrecoverable", async () => {
  const { run } = start("throwsUnrecoverable");
  await assert.rejects(run.result, (error: Error) => {
    assert.equal(error.name, "UnrecoverableError");
    assert.equal(error.message, "no point retrying");
    assert.equal(isUnrecoverable(error), true);
    return true;
  });
});

test("a thrown non-Error becomes an Error", async () => {
  const { run } = start("throwsString");
  await assert.rejects(run.result, { name: "Error", message: "just a string" });
});

test("abort() fires ctx.signal in the thread; a cooperative handler returns with the reason", async () => {
  const { run, logged } = start("returnsOnAbort");
  await logged("waiting");
  run.abort("cancelled by user");
  assert.deepEqual(await run.result, { stoppedBy: "cancelled by user" });
  run.abort("again"); // harmless after settle
  await run.terminate(); // likewise: resolves, the thread is already gone
});

test("abort() fires ctx.signal in the thread; a cooperative handler throws with the reason", async () => {
  const { run, logged } = start("throwsOnAbort");
  await logged("waiting");
  run.abort("timeout");
  await assert.rejects(run.result, { name: "Error", message: "stopped: timeout" });
});

test("terminate() ends a busy loop that ignores the signal, and the thread is really gone", {
  timeout: 10_000,
}, async () => {
  const { run, logged } = start("busyLoop");
  await logged("spinning");
  run.abort("cancelled"); // ignored: the loop never yields
  assert.ok(threadResources().length > 0, "the worker should be active while it spins");
  const startedAt = Date.now();
  await run.terminate();
  // Promptness is the point (terminate() is how a stop really ends a thread); the bound is generous, as terminating
  // a spinning isolate takes milliseconds, not seconds, even on a loaded machine.
  assert.ok(Date.now() - startedAt < 2_000, `terminate took ${Date.now() - startedAt} ms`);
  await assert.rejects(run.result, { name: "ThreadTerminatedError" });
  assert.deepEqual(threadResources(), []);
  await run.terminate(); // idempotent
});

test("terminate() right after start, before the handler module has even loaded", async () => {
  const { run } = start("busyLoop");
  await run.terminate();
  await assert.rejects(run.result, { name: "ThreadTerminatedError" });
});

test("a handler that leaves a timer running still settles, and its thread does not linger", async () => {
  const { run, seen } = start("leavesTimer");
  assert.equal(await run.result, "ok");
  assert.deepEqual(threadResources(), []);
  const count = seen.length;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(seen.length, count, "no progress after the result");
});

test("process.exit(3) in the handler rejects the run", async () => {
  const { run } = start("exits");
  await assert.rejects(run.result, /exited with code 3/);
});

test("an uncaught exception in the thread rejects the run with that error", async () => {
  const { run } = start("crashesLater");
  await assert.rejects(run.result, { name: "RangeError", message: "boom from a timer" });
});

test("a result that cannot be structured-cloned rejects with a clear error", async () => {
  const { run } = start("returnsFunction");
  await assert.rejects(run.result, (error: Error) => {
    assert.equal(error.name, "TypeError");
    assert.match(error.message, /demo returned a value that cannot be structured-cloned/);
    return true;
  });
});

test("a missing module rejects with handler_not_defined", async () => {
  const missing = new URL("./fixtures/no-such-module.ts", import.meta.url);
  const { run } = start(undefined, null, missing.href); // an href string works as well as a URL
  await assert.rejects(run.result, (error: Error) => {
    assert.ok(error instanceof ConveyorError);
    assert.equal(error.code, "handler_not_defined");
    assert.match(error.message, /cannot import handler module .*no-such-module\.ts/);
    return true;
  });
});

test("a missing export, or one that is not a function, rejects with handler_not_defined", async () => {
  for (const [name, found] of [
    ["nope", "undefined"],
    ["notAFunction", "number"],
  ] as const) {
    const { run } = start(name);
    await assert.rejects(run.result, (error: Error) => {
      assert.ok(error instanceof ConveyorError);
      assert.equal(error.code, "handler_not_defined");
      assert.equal(error.message, `handler module ${FIXTURES.href} has no function export "${name}" (found ${found})`);
      return true;
    });
  }
});

test("runs are isolated: parallel threads, each with its own answer, none left behind", async () => {
  const runs = [1, 2, 3, 4].map((n) => start(undefined, { n }).run);
  assert.equal(new Set(runs.map((r) => r.threadId)).size, 4);
  const results = (await Promise.all(runs.map((r) => r.result))) as Array<{ doubled: number }>;
  assert.deepEqual(
    results.map((r) => r.doubled),
    [2, 4, 6, 8],
  );
  assert.deepEqual(threadResources(), []);
});

test("terminate() without ever awaiting result causes no unhandled rejection", async () => {
  const { run } = start("busyLoop");
  await run.terminate();
  // node:test reports an unhandled rejection as a failure; give one a turn to surface.
  await new Promise((resolve) => setImmediate(resolve));
});

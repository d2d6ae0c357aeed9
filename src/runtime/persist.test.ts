/**
 * persist(): a write that must not be lost is retried, with a growing pause, until the store takes it, and every
 * failure is logged. The store here is a write that fails a given number of times (failure injection); the pauses
 * are checked as the node logs them (exactly) and, on the clock, as lower bounds only.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { leakedResources } from "./fixtures/runtime-handlers.ts";
import type { Log } from "./handler.ts";
import { persist } from "./persist.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer or handle behind"));

type Line = { level: string; msg: string; fields: Record<string, unknown> | undefined };

function recordingLogger(): Log & { lines: Line[] } {
  const lines: Line[] = [];
  const log = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push({ level, msg, fields });
  return { lines, debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/** A write that throws its first `failures` calls (each a distinct error), then returns `value`; records its calls. */
function failingWrite<T>(failures: number, value: T) {
  const calls: number[] = [];
  const errors: Error[] = [];
  const write = async (): Promise<T> => {
    calls.push(performance.now());
    if (calls.length <= failures) {
      const error = new Error(`store unavailable (${calls.length})`);
      errors.push(error);
      throw error;
    }
    return value;
  };
  return { write, calls, errors };
}

test("a write that succeeds is made once, and nothing is logged", async () => {
  const logger = recordingLogger();
  const { write, calls } = failingWrite(0, [1, 2]);
  assert.deepEqual(await persist("completing tasks", write, logger), [1, 2]);
  assert.equal(calls.length, 1);
  assert.deepEqual(logger.lines, []);
});

test("a failing write is retried until it succeeds, the pause doubling up to maxDelayMs; each failure is logged", {
  timeout: 10_000,
}, async () => {
  const logger = recordingLogger();
  const { write, calls, errors } = failingWrite(4, "written");
  assert.equal(await persist("failing a task", write, logger, 300), "written", "the caller gets the write's value");
  assert.equal(calls.length, 5, "four failures, then the write that succeeded");
  const delays = [100, 200, 300, 300]; // 50·2^attempt: 100, 200, 400 and 800 capped at 300
  assert.deepEqual(
    logger.lines,
    delays.map((delay, i) => ({
      level: "warn",
      msg: `failing a task failed; retrying in ${delay} ms`,
      fields: { err: errors[i], attempt: i + 1 },
    })),
  );
  // Lower bounds only (a timer never fires early; 1 ms for the clock's granularity): each retry waited its pause.
  const gaps = calls.slice(1).map((at, i) => at - calls[i]!);
  gaps.forEach((gap, i) => assert.ok(gap >= delays[i]! - 1, `retry ${i + 1} came ${gap} ms after the failure`));
});

/**
 * CompletionBuffer, on a real SQLite store: completions made in one tick go in one write; those that arrive while a
 * write is under way wait for it and go together in the next; each caller learns whether its completion was
 * committed (false for a stale attempt); a write that fails is retried, not lost. The store's taskComplete is wrapped
 * to see each batch and, where a test needs it, to hold a write until the test lets it go.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { TaskCompletion } from "../store/store.ts";
import { CompletionBuffer } from "./completion-buffer.ts";
import { deferred, leakedResources } from "./fixtures/runtime-handlers.ts";
import { runningTasks, sqliteStore } from "./fixtures/sqlite-store.ts";
import type { Log } from "./handler.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer or handle behind"));

function recordingLogger(): Log & { warnings: string[] } {
  const warnings: string[] = [];
  const none = () => {};
  return { warnings, debug: none, info: none, warn: (msg) => void warnings.push(msg), error: none };
}

/** Wraps the store's taskComplete: records each batch (by task id), and holds the writes listed in `hold`. */
function watchWrites(store: { taskComplete: (p: { completions: TaskCompletion[]; now: Date }) => Promise<number[]> }) {
  const batches: number[][] = [];
  const hold = new Map<number, Promise<void>>();
  const started: (() => void)[] = [];
  const complete = store.taskComplete.bind(store);
  store.taskComplete = async (params) => {
    const index = batches.length;
    batches.push(params.completions.map((c) => c.id));
    started[index]?.();
    await hold.get(index);
    return complete(params);
  };
  /** Resolves when write number `index` (0-based) has begun. */
  const begun = (index: number) =>
    new Promise<void>((resolve) => {
      if (batches.length > index) resolve();
      else started[index] = resolve;
    });
  return { batches, hold, begun };
}

test("completions made in one tick are written in one batch, and each is committed", async (t) => {
  const store = await sqliteStore(t);
  const tasks = await runningTasks(store, 3);
  const writes = watchWrites(store);
  const flushed: number[][] = [];
  const buffer = new CompletionBuffer(store, recordingLogger(), (ids) => flushed.push(ids));
  const outcomes = await Promise.all(tasks.map((task) => buffer.complete(task.id, task.queue, task.attempt, task.id)));
  assert.deepEqual(outcomes, [true, true, true]);
  assert.deepEqual(writes.batches, [tasks.map((task) => task.id)], "one write for the three");
  assert.deepEqual(flushed, [tasks.map((task) => task.id)], "onFlushed hears the ids committed");
  for (const task of tasks) {
    const stored = await store.taskGet({ id: task.id });
    assert.deepEqual([stored?.state, stored?.result], ["completed", task.id]);
  }
});

test("completions that arrive while a batch is being written wait for it, then go together in the next", async (t) => {
  const store = await sqliteStore(t);
  const [a, b, c] = await runningTasks(store, 3);
  const writes = watchWrites(store);
  const firstWrite = deferred();
  writes.hold.set(0, firstWrite.promise);
  const buffer = new CompletionBuffer(store, recordingLogger(), () => {});
  const completing = [buffer.complete(a!.id, a!.queue, 1, "a")];
  await writes.begun(0);
  // The first write is under way (and held): these gather meanwhile.
  completing.push(buffer.complete(b!.id, b!.queue, 1, "b"), buffer.complete(c!.id, c!.queue, 1, "c"));
  const drained = buffer.drain();
  let settled = 0;
  for (const promise of completing) void promise.then(() => settled++);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, 0, "nothing resolves before its write commits");
  assert.deepEqual(writes.batches, [[a!.id]], "no second write starts while the first is under way");
  firstWrite.resolve();
  assert.deepEqual(await Promise.all(completing), [true, true, true]);
  await drained;
  assert.deepEqual(writes.batches, [[a!.id], [b!.id, c!.id]], "the two that waited went in one write");
  assert.equal((await store.taskGet({ id: c!.id }))?.result, "c");
});

test("a stale or unknown completion resolves false and changes nothing; onFlushed hears only what committed", async (t) => {
  const store = await sqliteStore(t);
  const [task, other] = await runningTasks(store, 2);
  const flushed: number[][] = [];
  const buffer = new CompletionBuffer(store, recordingLogger(), (ids) => flushed.push(ids));
  const outcomes = await Promise.all([
    buffer.complete(task!.id, task!.queue, 2, "a later attempt's"), // the task is on attempt 1
    buffer.complete(other!.id, "elsewhere", 1, "wrong queue"),
    buffer.complete(999_999, "default", 1, "unknown"),
  ]);
  assert.deepEqual(outcomes, [false, false, false]);
  assert.deepEqual(flushed, [], "a write that committed nothing is not announced");
  for (const id of [task!.id, other!.id]) assert.equal((await store.taskGet({ id }))?.state, "running");
});

test("two completions of one task in one tick, a stale attempt's and the live one's: only the live one is committed", async (t) => {
  // A node judged dead while its attempt 1 ran, whose task it then claimed again (attempt 2), may finish both.
  const store = await sqliteStore(t);
  const [task] = await runningTasks(store, 1);
  await store.taskRescue({ rescuer: "leader", deadBefore: new Date(Date.now() + 1000), maxStalls: 3, now: new Date() });
  const [again] = await store.taskClaim({ queue: "default", types: ["job"], node: "n1", limit: 1, now: new Date() });
  assert.equal(again?.attempt, 2);
  const flushed: number[][] = [];
  const buffer = new CompletionBuffer(store, recordingLogger(), (ids) => flushed.push(ids));
  const outcomes = await Promise.all([
    buffer.complete(task!.id, task!.queue, 1, "stale"),
    buffer.complete(task!.id, task!.queue, 2, "live"),
  ]);
  assert.deepEqual(outcomes, [false, true], "each caller learns whether its own completion was committed");
  assert.equal((await store.taskGet({ id: task!.id }))?.result, "live");
  assert.deepEqual(flushed.flat(), [task!.id]);
});

test("a write that fails is retried until it commits, and logged; the caller only sees it committed", {
  timeout: 10_000,
}, async (t) => {
  const store = await sqliteStore(t);
  const [task] = await runningTasks(store, 1);
  const complete = store.taskComplete.bind(store);
  let failures = 0;
  store.taskComplete = async (params) => {
    if (failures++ === 0) throw new Error("database is locked");
    return complete(params);
  };
  const logger = recordingLogger();
  const buffer = new CompletionBuffer(store, logger, () => {});
  assert.equal(await buffer.complete(task!.id, task!.queue, 1, "done"), true);
  assert.equal(failures, 2, "one failed write, then the one that committed");
  assert.deepEqual(logger.warnings, ["completing tasks failed; retrying in 100 ms"]);
  assert.equal((await store.taskGet({ id: task!.id }))?.state, "completed");
});

test("drain() resolves once everything buffered so far is written, and at once when nothing is", async (t) => {
  const store = await sqliteStore(t);
  const tasks = await runningTasks(store, 2);
  const buffer = new CompletionBuffer(store, recordingLogger(), () => {});
  await buffer.drain();
  for (const task of tasks) void buffer.complete(task.id, task.queue, 1, null);
  await buffer.drain();
  for (const task of tasks) assert.equal((await store.taskGet({ id: task.id }))?.state, "completed");
});

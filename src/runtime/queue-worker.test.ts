/**
 * QueueWorker, wired as a node wires it (a real SQLite store, the in-process bus, the notifier, the outcome recorder
 * and completion buffer) but run by the test instead of a supervisor. Its backstop poll is a minute: every claim here
 * comes from the loop's start, a full batch, a freed slot with a known backlog, or a wake on the bus, and a test that
 * leaned on the poll would time out. The store's taskClaim is wrapped to see each claim's limit and what it got.
 */
import assert from "node:assert/strict";
import { after, test, type TestContext } from "node:test";
import { LocalBus } from "../bus/local-bus.ts";
import type { Task } from "../core/task.ts";
import { CompletionBuffer } from "./completion-buffer.ts";
import { Definitions } from "./definitions.ts";
import { deferred, type Deferred, leakedResources } from "./fixtures/runtime-handlers.ts";
import { addTasks, sqliteStore } from "./fixtures/sqlite-store.ts";
import type { TaskHandler, Log } from "./handler.ts";
import { NodeEvents } from "./node-events.ts";
import { Notifier } from "./notifier.ts";
import { FaultPlan } from "./faults.ts";
import { OutcomeRecorder } from "./outcomes.ts";
import { ProgressWriter } from "./progress-writer.ts";
import { QueueWorker } from "./queue-worker.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket or handle behind"));

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

/** Handlers that block until the test releases them, one by one; counts how many run at once. */
class Gates {
  running = 0;
  most = 0;
  /** Once set, handlers return at once. */
  open = false;
  readonly #blocked: Deferred<void>[] = [];

  readonly handler: TaskHandler = async (data: { i?: number }) => {
    this.most = Math.max(this.most, ++this.running);
    try {
      if (!this.open) {
        const gate = deferred();
        this.#blocked.push(gate);
        await gate.promise;
      }
    } finally {
      this.running--;
    }
    return data?.i ?? null;
  };

  /** Lets the oldest blocked handler return. */
  releaseOne(): void {
    this.#blocked.shift()?.resolve();
  }

  /** Lets every blocked handler return, and those to come return at once. */
  releaseAll(): void {
    this.open = true;
    while (this.#blocked.length > 0) this.releaseOne();
  }
}

type Setup = {
  handlers: Record<string, TaskHandler>;
  concurrency: number;
  batchSize?: number;
  graceMs?: number;
};

async function setUp(t: TestContext, { handlers, concurrency, batchSize = 50, graceMs = 1000 }: Setup) {
  // Registered before the store's own hook (hooks run in order): the worker stops before its store closes.
  let stop = async () => {};
  t.after(() => stop());
  const store = await sqliteStore(t);
  const bus = new LocalBus();
  const notifier = new Notifier(bus);
  const events = new NodeEvents((_event, error) => {
    throw error;
  });
  const definitions = new Definitions();
  for (const [type, handler] of Object.entries(handlers)) definitions.define(type, handler, { graceMs });
  const completions = new CompletionBuffer(store, silent, () => notifier.eventsWritten());
  const progress = new ProgressWriter(store, silent, 100, () => notifier.eventsWritten());
  const outcomes = new OutcomeRecorder({ store, definitions, completions, progress, notifier, events, logger: silent });
  const worker = new QueueWorker(
    {
      store,
      bus,
      notifier,
      events,
      outcomes,
      faults: new FaultPlan(),
      nodeId: "n1",
      definitions,
      progress,
      logger: silent,
      taskLogger: () => silent,
    },
    { queue: "default", types: Object.keys(handlers), concurrency, batchSize, pollIntervalMs: 60_000 },
  );
  const claims: { limit: number; got: number }[] = [];
  const claim = store.taskClaim.bind(store);
  store.taskClaim = async (params) => {
    const tasks = await claim(params);
    claims.push({ limit: params.limit, got: tasks.length });
    return tasks;
  };
  // Every task:started is checked against the concurrency, at the moment it starts.
  const overCommitted: number[] = [];
  events.on("task:started", () => worker.runningCount > concurrency && overCommitted.push(worker.runningCount));
  const runs: { controller: AbortController; done: Promise<void> }[] = [];
  /** Runs the claim loop (again) as the supervisor would; `done` settles when it ends, rejecting if it crashed. */
  const run = () => {
    const controller = new AbortController();
    const entry = { controller, done: worker.run(controller.signal) };
    entry.done.catch(() => {}); // a test that crashes the loop awaits it itself
    runs.push(entry);
    return entry;
  };
  stop = async () => {
    for (const { controller, done } of runs) {
      controller.abort();
      await done.catch(() => {});
    }
    for (const execution of await worker.settle(0)) execution.stop("shutdown");
    await worker.settle(5000);
    await completions.drain();
    await bus.close();
  };
  /** The first n task:started events from now on (their tasks). */
  const started = (n: number) =>
    new Promise<Task[]>((resolve) => {
      const seen: Task[] = [];
      const listener = ({ task }: { task: Task }) => {
        seen.push(task);
        if (seen.length < n) return;
        events.off("task:started", listener);
        resolve(seen);
      };
      events.on("task:started", listener);
    });
  return { store, bus, notifier, events, worker, claims, overCommitted, run, started, completions };
}

test("claims up to its free slots, in batches of at most batchSize, and never runs more than its concurrency", {
  timeout: 15_000,
}, async (t) => {
  const gates = new Gates();
  t.after(() => gates.releaseAll());
  const s = await setUp(t, { handlers: { job: gates.handler }, concurrency: 5, batchSize: 2 });
  const tasks = await addTasks(
    s.store,
    Array.from({ length: 12 }, (_, i) => ({ type: "job", data: { i } })),
  );
  const allDone = new Promise<void>((resolve) => {
    let completed = 0;
    s.events.on("task:completed", () => ++completed === 12 && resolve());
  });
  const firstFive = s.started(5);
  s.run();
  await firstFive;
  await turns();
  // 5 free slots, batches of 2: 2, 2, then 1 — and no claim while the slots are full.
  assert.deepEqual(s.claims, [
    { limit: 2, got: 2 },
    { limit: 2, got: 2 },
    { limit: 1, got: 1 },
  ]);
  assert.equal(s.worker.runningCount, 5);
  // One slot freed: one claim of one (the last claim came back full, so a backlog is known).
  const next = s.started(1);
  gates.releaseOne();
  await next;
  assert.deepEqual(s.claims.at(-1), { limit: 1, got: 1 });
  // Then the rest, as slots free up.
  gates.releaseAll();
  await allDone;
  for (const task of tasks) assert.equal((await s.store.taskGet({ id: task.id }))?.state, "completed");
  assert.equal(gates.most, 5, "five at once: never more, and the limit is used");
  assert.deepEqual(s.overCommitted, [], "never more running than the concurrency");
  assert.ok(
    s.claims.every((c) => c.limit <= 2),
    `a claim over batchSize: ${JSON.stringify(s.claims)}`,
  );
});

test("a freed slot starts a claim when the last claim came back full (a backlog is known)", {
  timeout: 10_000,
}, async (t) => {
  const gates = new Gates();
  t.after(() => gates.releaseAll());
  const s = await setUp(t, { handlers: { job: gates.handler }, concurrency: 1 });
  const [, second] = await addTasks(s.store, [
    { type: "job", data: { i: 0 } },
    { type: "job", data: { i: 1 } },
  ]);
  const first = s.started(1);
  s.run();
  await first;
  assert.deepEqual(s.claims, [{ limit: 1, got: 1 }]);
  // No wake and no poll: only the freed slot's ring can start the second task.
  const then = s.started(1);
  gates.releaseOne();
  assert.equal((await then)[0]!.id, second!.id);
  assert.deepEqual(s.claims, [
    { limit: 1, got: 1 },
    { limit: 1, got: 1 },
  ]);
});

test("a freed slot starts no claim when the last claim came back short; a wake for its queue does", {
  timeout: 10_000,
}, async (t) => {
  const gates = new Gates();
  t.after(() => gates.releaseAll());
  const s = await setUp(t, { handlers: { job: gates.handler }, concurrency: 2 });
  await addTasks(s.store, [{ type: "job" }]);
  const first = s.started(1);
  s.run();
  await first;
  assert.deepEqual(s.claims, [{ limit: 2, got: 1 }], "the queue ran dry: no backlog");
  const completed = new Promise((resolve) => s.events.once("task:completed", resolve));
  gates.releaseOne();
  await completed;
  // A task added without ringing (as another process on the file would) waits: no claim for a freed slot, nor for a
  // wake of another queue.
  const [quiet] = await addTasks(s.store, [{ type: "job" }]);
  s.bus.publish("wake", { queue: "other" });
  await turns();
  assert.equal(s.claims.length, 1, `claims: ${JSON.stringify(s.claims)}`);
  assert.equal((await s.store.taskGet({ id: quiet!.id }))?.state, "queued");
  const woken = s.started(1);
  s.bus.publish("wake", { queue: "default" });
  assert.equal((await woken)[0]!.id, quiet!.id);
  assert.deepEqual(s.claims.at(-1), { limit: 2, got: 1 });
});

test("a cancel on the bus stops the task it runs: its signal fires, its slot frees, nothing is recorded", {
  timeout: 10_000,
}, async (t) => {
  const reasons: unknown[] = [];
  const handler: TaskHandler = (_data, ctx) =>
    new Promise((resolve) =>
      ctx.signal.addEventListener(
        "abort",
        () => {
          reasons.push(ctx.signal.reason);
          resolve("returned after the stop");
        },
        { once: true },
      ),
    );
  const s = await setUp(t, { handlers: { job: handler }, concurrency: 2 });
  const [task] = await addTasks(s.store, [{ type: "job" }]);
  const started = s.started(1);
  s.run();
  await started;
  const stopped = new Promise<unknown>((resolve) => s.events.once("task:stopped", resolve));
  s.notifier.taskCancelled(999_999, { wasRunning: true }); // not one of its tasks: ignored
  const outcome = await s.store.taskCancel({ id: task!.id, reason: "by test", now: new Date() });
  assert.equal(outcome?.cancelled, true);
  s.notifier.taskCancelled(task!.id, { wasRunning: true });
  const event = (await stopped) as { task: Task; reason: string; how: string };
  assert.deepEqual([event.task.id, event.reason, event.how], [task!.id, "cancelled", "returned"]);
  assert.deepEqual(reasons, ["cancelled"]);
  assert.equal(s.worker.runningCount, 0);
  await s.completions.drain();
  const stored = await s.store.taskGet({ id: task!.id });
  assert.deepEqual(
    [stored?.state, stored?.result],
    ["cancelled", null],
    "the handler's value after a stop is discarded",
  );
});

test("a crash of the claim loop leaves running executions alone; the restarted loop carries on", {
  timeout: 10_000,
}, async (t) => {
  const gates = new Gates();
  t.after(() => gates.releaseAll());
  const aborted: unknown[] = [];
  const handler: TaskHandler = async (data, ctx) => {
    ctx.signal.addEventListener("abort", () => aborted.push(ctx.signal.reason), { once: true });
    return gates.handler(data, ctx);
  };
  const s = await setUp(t, { handlers: { job: handler }, concurrency: 2 });
  const [first] = await addTasks(s.store, [{ type: "job", data: { i: 1 } }]);
  const started = s.started(1);
  const loop = s.run();
  await started;
  // The next claim fails: the loop crashes, as a store error would make it.
  const claim = s.store.taskClaim;
  const failure = new Error("claim failed");
  s.store.taskClaim = async () => {
    s.store.taskClaim = claim;
    throw failure;
  };
  s.bus.publish("wake", { queue: "default" });
  await assert.rejects(loop.done, failure);
  assert.equal(s.worker.runningCount, 1, "the task in flight still runs");
  assert.deepEqual(s.worker.runningIds(), [first!.id]);
  assert.deepEqual(aborted, [], "and was not signalled");

  const [second] = await addTasks(s.store, [{ type: "job", data: { i: 2 } }]);
  const resumed = s.started(1);
  s.run(); // the supervisor's restart: its first pass claims the second task
  assert.equal((await resumed)[0]!.id, second!.id);
  const completed = new Promise<void>((resolve) => {
    let n = 0;
    s.events.on("task:completed", () => ++n === 2 && resolve());
  });
  gates.releaseAll();
  await completed;
  await s.completions.drain();
  for (const [task, result] of [
    [first!, 1],
    [second!, 2],
  ] as const) {
    const stored = await s.store.taskGet({ id: task.id });
    assert.deepEqual([stored?.state, stored?.result], ["completed", result], `task ${task.id}`);
  }
  assert.equal(s.worker.runningCount, 0);
});

test("settle() returns what still runs when its time is up, and resolves as soon as nothing runs", {
  timeout: 10_000,
}, async (t) => {
  const gates = new Gates();
  t.after(() => gates.releaseAll());
  const s = await setUp(t, { handlers: { job: gates.handler }, concurrency: 2 });
  assert.deepEqual(await s.worker.settle(60_000), [], "nothing runs: at once");
  const [task] = await addTasks(s.store, [{ type: "job" }]);
  const started = s.started(1);
  s.run();
  await started;
  const left = await s.worker.settle(20);
  assert.deepEqual(
    left.map((execution) => execution.task.id),
    [task!.id],
  );
  const settling = s.worker.settle(60_000);
  gates.releaseOne();
  assert.deepEqual(await settling, [], "resolved by the last task's end, not by the minute");
});

test("reserveSlot() promises a slot only while the loop runs, no backlog is known, the type is its own and a slot is free", {
  timeout: 10_000,
}, async (t) => {
  const gates = new Gates();
  t.after(() => gates.releaseAll());
  const s = await setUp(t, { handlers: { job: gates.handler }, concurrency: 2 });
  assert.equal(s.worker.reserveSlot("job"), false, "the loop is not running");
  const looked = new Promise<void>((resolve) => {
    const claim = s.store.taskClaim;
    s.store.taskClaim = async (params) => {
      const tasks = await claim(params);
      resolve();
      return tasks;
    };
  });
  s.run();
  await looked;
  await turns();
  assert.equal(s.worker.reserveSlot("other.type"), false, "not a type of this worker");
  assert.equal(s.worker.reserveSlot("job"), true);
  assert.equal(s.worker.reserveSlot("job"), true);
  assert.equal(s.worker.reserveSlot("job"), false, "both slots are promised");
  s.worker.unreserve();
  assert.equal(s.worker.reserveSlot("job"), true, "a slot given back can be promised again");
  s.worker.unreserve();
  s.worker.unreserve();
  s.bus.publish("wake", { queue: "default" });
  await turns(1);
  assert.equal(s.worker.reserveSlot("job"), false, "a wake says tasks may wait in the queue: they go first");
});

test("a task claimed again while its older attempt still runs here: the stale attempt is stopped, the new one tracked", {
  timeout: 10_000,
}, async (t) => {
  // This node was judged dead while attempt 1 ran (a frozen process); the task went back to the queue and this node
  // claimed it again, before its backstop poll noticed the rescue.
  const stops: string[] = [];
  const handler: TaskHandler = (_data, ctx) =>
    new Promise((resolve) =>
      ctx.signal.addEventListener(
        "abort",
        () => {
          stops.push(`attempt ${ctx.attempt}: ${String(ctx.signal.reason)}`);
          resolve(null);
        },
        { once: true },
      ),
    );
  const s = await setUp(t, { handlers: { job: handler }, concurrency: 2 });
  const [task] = await addTasks(s.store, [{ type: "job" }]);
  const first = s.started(1);
  s.run();
  await first;
  const rescued = await s.store.taskRescue({
    rescuer: "leader",
    deadBefore: new Date(Date.now() + 60_000),
    maxStalls: 3,
    now: new Date(),
  });
  assert.deepEqual(
    rescued.map((r) => [r.task.id, r.outcome]),
    [[task!.id, "retried"]],
  );
  const staleStopped = new Promise<unknown>((resolve) => s.events.once("task:stopped", resolve));
  const again = s.started(1);
  s.bus.publish("wake", { queue: "default" });
  assert.equal((await again)[0]!.attempt, 2);
  const stale = (await staleStopped) as { task: Task; reason: string };
  assert.deepEqual([stale.task.attempt, stale.reason], [1, "cancelled"], "the stale attempt was stopped at once");
  assert.deepEqual(stops, ["attempt 1: cancelled"]);
  assert.deepEqual(s.worker.runningIds(), [task!.id]);
  assert.equal(s.worker.runningCount, 1, "attempt 2 still holds its slot");
  // Attempt 2 is the one a cancel reaches.
  const stopped = new Promise<unknown>((resolve) => s.events.once("task:stopped", resolve));
  s.notifier.taskCancelled(task!.id, { wasRunning: true });
  assert.deepEqual(((await stopped) as { task: Task }).task.attempt, 2);
  assert.deepEqual(stops, ["attempt 1: cancelled", "attempt 2: cancelled"]);
  assert.equal(s.worker.runningCount, 0);
});

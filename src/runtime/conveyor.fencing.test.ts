/**
 * Self-fencing (fence.ts, docs/cluster.md): a node whose heartbeat cannot reach the store stops claiming and stops
 * its tasks (reason "fenced") before the dead time, and rejoins by itself when the store answers again. The store
 * here is a real SQLite file behind a cut the test controls: cut, every call waits (as a query does behind a dead
 * link) until the cut heals, and then fails (as a reset connection does). It says it is shared by many hosts, as
 * PostgreSQL is: on one host a node does not fence (the last test). The leader's rescue and the other node's run are
 * played on the file directly, where the cut does not reach.
 */
import { after, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import type { Json } from "../core/task.ts";
import type { Store } from "../store/store.ts";
import { Conveyor } from "./conveyor.ts";
import { deferred, leakedResources, logWatcher, threadResources } from "./fixtures/runtime-handlers.ts";
import { sqliteStore } from "./fixtures/sqlite-store.ts";
import type { ConveyorOptions } from "./options.ts";

const FIXTURES = new URL("./fixtures/runtime-handlers.ts", import.meta.url);

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket, thread or handle behind"));

/** Dead after 4 × 50 ms of silence; fenced after 200 − 60 = 140 ms. */
const TIMING = { heartbeatIntervalMs: 50, deadAfterBeats: 4, fenceMarginMs: 60 } as const;
const DEAD_AFTER_MS = 200;
const THRESHOLD_MS = 140;

type Cut = {
  store: Store;
  cut(): void;
  heal(): void;
  /** Calls that went through to the store, by method. */
  calls: Map<PropertyKey, number>;
};

/** `store` behind a cut; `multiHost` is what it claims to be. */
function cuttable(store: Store, multiHost = true): Cut {
  let cut: PromiseWithResolvers<void> | null = null;
  const calls = new Map<PropertyKey, number>();
  const passThrough = new Set<PropertyKey>(["close", "watchForeignWrites", "dispatch"]);
  const proxy = new Proxy(store, {
    get(target, property) {
      if (property === "capabilities") return { ...target.capabilities, multiHost };
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (passThrough.has(property)) return (value as (...a: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        const wall = cut;
        if (wall === null) {
          calls.set(property, (calls.get(property) ?? 0) + 1);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        }
        return wall.promise.then(() => {
          throw new Error("connection reset: the link was cut");
        });
      };
    },
  });
  return {
    calls,
    store: proxy,
    cut: () => (cut ??= Promise.withResolvers<void>()),
    heal: () => {
      cut?.resolve();
      cut = null;
    },
  } as Cut;
}

async function node(t: TestContext, options: ConveyorOptions = {}) {
  // Stopped before its store closes (hooks run in the order they were added).
  let stop = async () => {};
  t.after(() => stop());
  const raw = await sqliteStore(t);
  const link = cuttable(raw);
  const conveyor = new Conveyor({
    pollIntervalMs: 50,
    shutdownGraceMs: 100,
    logger: pino({ level: "silent" }),
    ...TIMING,
    ...options,
    store: link.store,
  });
  stop = async () => {
    link.heal();
    await conveyor.stop();
  };
  return { conveyor, raw, link };
}

/** An inline handler that honours its signal, and still returns a value after it fired (a late result). */
function holding() {
  const started = deferred<number>();
  const reasons: unknown[] = [];
  let attempts = 0;
  const handler = (_data: unknown, ctx: { signal: AbortSignal; attempt: number }) => {
    attempts++;
    started.resolve(ctx.attempt);
    return new Promise<Json>((resolve) =>
      ctx.signal.addEventListener(
        "abort",
        () => {
          reasons.push(ctx.signal.reason);
          resolve(`late result of attempt ${ctx.attempt}`);
        },
        { once: true },
      ),
    );
  };
  return { handler, started, reasons, attempts: () => attempts };
}

test("cut off from the store, a node fences before the dead time: its task's signal fires with reason fenced, and the attempt's late result is never written", {
  timeout: 15_000,
}, async (t) => {
  const { conveyor, raw, link } = await node(t);
  const hold = holding();
  conveyor.define("hold", hold.handler, { queue: "q" });
  conveyor.define("quick", () => "quick", { queue: "q" });
  await conveyor.start();
  const task = await conveyor.enqueue("hold");
  await hold.started.promise;

  const stopped = conveyor.events.next("task:stopped", ({ task: s }) => s.id === task.id, 5000);
  const cutAt = Date.now();
  link.cut();
  const fenced = await conveyor.events.next("node:fenced", () => true, 5000);
  const fencedAfterMs = Date.now() - cutAt;
  assert.deepEqual(fenced.tasks, [task.id]);
  assert.ok(fenced.silentMs >= THRESHOLD_MS, `fenced once silent for the threshold (${fenced.silentMs} ms)`);
  assert.ok(fencedAfterMs < DEAD_AFTER_MS, `fenced ${fencedAfterMs} ms after the cut, before the dead time`);
  assert.equal(conveyor.fenced, true);
  assert.deepEqual(hold.reasons, ["fenced"]);
  const { reason, how } = await stopped;
  assert.deepEqual({ reason, how }, { reason: "fenced", how: "returned" });

  // The leader, which reaches the store, finds the node dead and hands the task to another node, which completes it.
  await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS - fencedAfterMs + 20));
  const rescued = await raw.taskRescue({
    rescuer: "leader",
    deadBefore: new Date(Date.now() - DEAD_AFTER_MS),
    maxStalls: 3,
    now: new Date(),
  });
  assert.deepEqual(
    rescued.map((r) => [r.task.id, r.outcome]),
    [[task.id, "retried"]],
  );
  const [second] = await raw.taskClaim({ queue: "q", types: ["hold"], node: "other", limit: 1, now: new Date() });
  assert.equal(second?.attempt, 2);
  await raw.taskComplete({
    completions: [{ id: task.id, queue: "q", attempt: 2, result: "other's" }],
    now: new Date(),
  });

  const unfenced = conveyor.events.next("node:unfenced", () => true, 5000);
  link.heal();
  assert.deepEqual((await unfenced).released, [], "nothing to hand back: the task was rescued");
  assert.equal(conveyor.fenced, false);

  // Claims again, and its abandoned attempt wrote nothing.
  const quick = await conveyor.enqueue("quick");
  assert.equal(await conveyor.result(quick.id, { timeoutMs: 5000 }), "quick");
  const done = (await raw.taskGet({ id: task.id }))!;
  assert.deepEqual(
    { state: done.state, attempt: done.attempt, node: done.node, result: done.result },
    {
      state: "completed",
      attempt: 2,
      node: "other",
      result: "other's",
    },
  );
  const events = (await raw.eventList({ after: 0, limit: 1000, taskId: task.id })).map((e) => e.type);
  assert.equal(events.filter((type) => type === "task.completed").length, 1, `completed once: ${events.join(", ")}`);
  assert.equal(hold.attempts(), 1, "the node never ran the task again");
});

test("a stale completion is harmless: an attempt that returned just before the fence, written once the store is back, is refused after a rescue", {
  timeout: 15_000,
}, async (t) => {
  const { conveyor, raw, link } = await node(t);
  const release = deferred();
  const returned = deferred();
  conveyor.define(
    "finish",
    async () => {
      await release.promise;
      returned.resolve();
      return "from the cut-off node";
    },
    { queue: "q" },
  );
  await conveyor.start();
  const task = await conveyor.enqueue("finish");
  await new Promise((resolve) => setTimeout(resolve, 20));
  link.cut();
  // Returns while cut: the completion waits on the store. Then the rescue and the other node's run land first.
  release.resolve();
  await returned.promise;
  await conveyor.events.next("node:fenced", () => true, 5000);
  await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS));
  await raw.taskRescue({
    rescuer: "leader",
    deadBefore: new Date(Date.now() - DEAD_AFTER_MS),
    maxStalls: 3,
    now: new Date(),
  });
  await raw.taskClaim({ queue: "q", types: ["finish"], node: "other", limit: 1, now: new Date() });
  await raw.taskComplete({
    completions: [{ id: task.id, queue: "q", attempt: 2, result: "other's" }],
    now: new Date(),
  });
  const unfenced = conveyor.events.next("node:unfenced", () => true, 5000);
  assert.equal(link.calls.get("taskComplete"), undefined, "the completion has not reached the store while cut");
  link.heal();
  await unfenced;
  // The buffered completion of attempt 1 is retried until the store takes it or refuses it as stale.
  await eventually(() => link.calls.has("taskComplete"), 5000, "the completion to reach the store");
  await new Promise((resolve) => setTimeout(resolve, 20));
  const done = (await raw.taskGet({ id: task.id }))!;
  assert.deepEqual(
    { state: done.state, attempt: done.attempt, result: done.result },
    {
      state: "completed",
      attempt: 2,
      result: "other's",
    },
  );
  const events = (await raw.eventList({ after: 0, limit: 1000, taskId: task.id })).map((e) => e.type);
  assert.equal(events.filter((type) => type === "task.completed").length, 1, `completed once: ${events.join(", ")}`);
});

test("the store back before the dead time: the node hands its abandoned task back, counting a stall, and runs it again", {
  timeout: 15_000,
}, async (t) => {
  const { conveyor, raw, link } = await node(t);
  const hold = holding();
  conveyor.define("hold", hold.handler, { queue: "q" });
  await conveyor.start();
  const task = await conveyor.enqueue("hold");
  await hold.started.promise;

  link.cut();
  await conveyor.events.next("node:fenced", () => true, 5000);
  const unfenced = conveyor.events.next("node:unfenced", () => true, 5000);
  link.heal();
  const { released, fencedMs } = await unfenced;
  assert.deepEqual(released, [task.id]);
  assert.ok(fencedMs >= 0);
  // Handed back with a stall counted, as the leader's rescue would have, then claimed again here: attempt 2 runs.
  await eventually(() => hold.attempts() === 2, 5000, "the task to run again");
  const again = (await raw.taskGet({ id: task.id }))!;
  assert.deepEqual(
    { state: again.state, attempt: again.attempt, node: again.node, stalls: again.stalls, error: again.error?.name },
    { state: "running", attempt: 2, node: conveyor.nodeId, stalls: 1, error: "StalledError" },
  );
  assert.deepEqual(hold.reasons, ["fenced"]);
});

test("a task stopped by one fence after another fails past maxStalls, instead of being handed back for ever", {
  timeout: 15_000,
}, async (t) => {
  // As a handler that blocks the event loop past the fence's threshold on every run would: each run ends in a fence.
  const { conveyor, raw, link } = await node(t, { maxStalls: 1 });
  const hold = holding();
  conveyor.define("hold", hold.handler, { queue: "q", maxAttempts: 5 });
  await conveyor.start();
  const task = await conveyor.enqueue("hold");
  for (const run of [1, 2]) {
    await eventually(() => hold.attempts() === run, 5000, `run ${run} to start`);
    link.cut();
    await conveyor.events.next("node:fenced", () => true, 5000);
    const unfenced = conveyor.events.next("node:unfenced", () => true, 5000);
    link.heal();
    assert.deepEqual((await unfenced).released, [task.id]);
  }
  const failed = (await raw.taskGet({ id: task.id }))!;
  assert.deepEqual(
    { state: failed.state, attempt: failed.attempt, stalls: failed.stalls, error: failed.error?.name },
    { state: "failed", attempt: 2, stalls: 2, error: "StalledError" },
    "the second stall is past maxStalls 1: failed, with 3 attempts left",
  );
  assert.deepEqual(hold.reasons, ["fenced", "fenced"]);
});

test("a thread task that ignores its signal is terminated within the fence margin, not after its own grace", {
  timeout: 15_000,
}, async (t) => {
  const logs = logWatcher();
  const { conveyor, link } = await node(t, { logger: pino({ level: "info" }, logs.stream) });
  conveyor.define("spin", { module: FIXTURES, export: "spinIgnoringSignal" }, { graceMs: 10_000 });
  await conveyor.start();
  const task = await conveyor.enqueue("spin");
  await logs.waitFor("spinning");
  const stopped = conveyor.events.next("task:stopped", ({ task: s }) => s.id === task.id, 5000);
  link.cut();
  await conveyor.events.next("node:fenced", () => true, 5000);
  const fencedAt = Date.now();
  const { reason, how } = await stopped;
  const endedAfterMs = Date.now() - fencedAt;
  assert.deepEqual({ reason, how }, { reason: "fenced", how: "terminated" });
  assert.ok(endedAfterMs < 2000, `terminated ${endedAfterMs} ms after the fence (margin ${TIMING.fenceMarginMs} ms)`);
  assert.deepEqual(threadResources(), []);
});

test("on one host (a SQLite file) a node does not fence: every process waits on the same file", {
  timeout: 10_000,
}, async (t) => {
  let stop = async () => {};
  t.after(() => stop());
  const raw = await sqliteStore(t);
  const link = cuttable(raw, false);
  const conveyor = new Conveyor({
    ...TIMING,
    pollIntervalMs: 50,
    logger: pino({ level: "silent" }),
    store: link.store,
  });
  stop = async () => {
    link.heal();
    await conveyor.stop();
  };
  let fenced = false;
  conveyor.events.on("node:fenced", () => (fenced = true));
  await conveyor.start();
  link.cut();
  await new Promise((resolve) => setTimeout(resolve, 2 * DEAD_AFTER_MS));
  assert.equal(fenced, false);
  assert.equal(conveyor.fenced, false);
});

test("fenceMarginMs: half a heartbeat by default; must leave more than one heartbeat before the dead time", () => {
  assert.equal(new Conveyor({ store: cuttable({} as Store).store }).options.fenceMarginMs, 250);
  assert.equal(
    new Conveyor({ store: cuttable({} as Store).store, heartbeatIntervalMs: 100, deadAfterBeats: 2 }).options
      .fenceMarginMs,
    50,
  );
  for (const bad of [-1, 1.5, 1000, 1250, "100" as unknown as number]) {
    assert.throws(() => new Conveyor({ store: cuttable({} as Store).store, fenceMarginMs: bad }), {
      name: "ConfigError",
      message: /fenceMarginMs must be an integer from 0 to 999/,
    });
  }
});

async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

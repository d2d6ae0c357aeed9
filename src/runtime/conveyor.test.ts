/**
 * Conveyor behaviour: results and waiting, uniqueness, the supervision tree and health (on SQLite and on PostgreSQL),
 * and bad input at the library's edge. The other conveyor.*.test.ts files cover scheduling, retries and timeouts,
 * cancel, and the node's lifecycle (progress, graceful stop, rescue).
 */
import { after, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { ConfigError, ValidationError } from "../core/errors.ts";
import type { Json, TaskInput } from "../core/task.ts";
import { Conveyor } from "./conveyor.ts";
import type { ConveyorOptions } from "./options.ts";
import { deferred, leakedResources, tempDatabase } from "./fixtures/runtime-handlers.ts";
import { testNode, testStores } from "./fixtures/test-node.ts";

after(() => assert.deepEqual(leakedResources(), [], "a test left a timer, socket, thread or handle behind"));

for (const store of await testStores("results, uniqueness, supervision")) {
  describe(store, () => {
    const node = (t: TestContext, options?: ConveyorOptions) => testNode(t, store, options);

    // ---- results -------------------------------------------------------------------------------------------

    test("result() resolves with the handler's return value; waitForFinish returns the finished task", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t);
      conveyor.define("sum", (data: { a: number; b: number }, ctx) => ({
        sum: data.a + data.b,
        id: ctx.id,
        nothing: undefined,
      }));
      conveyor.define("void", () => undefined);
      await conveyor.start();
      const task = await conveyor.enqueue("sum", { a: 2, b: 3 });
      assert.deepEqual(await conveyor.result(task.id), { sum: 5, id: task.id });
      const finished = await conveyor.waitForFinish(task.id, 1000);
      assert.equal(finished?.state, "completed");
      assert.deepEqual(finished?.result, { sum: 5, id: task.id });
      assert.ok(finished?.finishedAt instanceof Date && finished.startedAt instanceof Date);
      assert.equal(finished?.attempt, 1);
      const nothing = await conveyor.enqueue("void");
      assert.equal(await conveyor.result(nothing.id, { timeoutMs: 5000 }), null);
      assert.equal(await conveyor.waitForFinish(999_999, 100), null);
      await assert.rejects(conveyor.result(999_999), { code: "task_not_found" });
    });

    test("result() of a failed task rejects with task_failed; with timeoutMs it rejects with wait_timeout", {
      timeout: 10_000,
    }, async (t) => {
      const gate = deferred();
      t.after(() => gate.resolve()); // before the node's stop hook: hooks run in order
      const conveyor = node(t);
      conveyor.define(
        "bad",
        () => {
          throw new Error("kaput");
        },
        { maxAttempts: 1 },
      );
      conveyor.define("blocked", async () => {
        await gate.promise;
        return "eventually";
      });
      await conveyor.start();
      const bad = await conveyor.enqueue("bad");
      await assert.rejects(conveyor.result(bad.id), (error: Error & { code?: string; taskId?: number }) => {
        assert.equal(error.code, "task_failed");
        assert.equal(error.taskId, bad.id);
        assert.match(error.message, /kaput/);
        return true;
      });
      const blockedStarted = conveyor.events.next("task:started", ({ task }) => task.type === "blocked");
      const blocked = await conveyor.enqueue("blocked");
      const before = Date.now();
      await assert.rejects(conveyor.result(blocked.id, { timeoutMs: 100 }), { code: "wait_timeout" });
      // A lower bound, the very thing under test: the wait does not give up before its timeout (timers never fire
      // early, so a slow machine cannot break it; 5 ms for the clock's granularity).
      assert.ok(Date.now() - before >= 95, `gave up after ${Date.now() - before} ms, before its 100 ms`);
      await blockedStarted;
      const unfinished = await conveyor.waitForFinish(blocked.id, 50);
      assert.equal(unfinished?.state, "running", "a wait that runs out returns the task as it is");
      gate.resolve();
      assert.equal(await conveyor.result(blocked.id, { timeoutMs: 5000 }), "eventually");
    });

    test("result() sees a task completed by another Conveyor on the same store", { timeout: 10_000 }, async (t) => {
      // The producer never starts: it only enqueues and waits. The worker runs the handler.
      const producer = node(t);
      const worker = node(t);
      worker.define("remote", (data: { n: number }) => ({ squared: data.n * data.n }));
      await worker.start();
      const task = await producer.enqueue("remote", { n: 12 });
      // No timeout of its own: only the event feed can end this wait (the test's timeout catches one that never ends).
      assert.deepEqual(await producer.result(task.id), { squared: 144 });
      assert.equal((await producer.get(task.id))?.node, worker.nodeId);
    });

    test("result() on a started node sees a task completed by another node, and a failure there too", {
      timeout: 10_000,
    }, async (t) => {
      const producer = node(t);
      const worker = node(t);
      producer.define("elsewhere.other", () => "unused", { queue: "other" });
      worker.define(
        "remote",
        (data: { fail: boolean }) => {
          if (data.fail) throw new Error("remote failure");
          return "remote ok";
        },
        { maxAttempts: 1 },
      );
      await producer.start();
      await worker.start();
      const ok = await producer.enqueue("remote", { fail: false });
      // The producer does not know the type, so it must say what the type's definition on the worker would.
      const bad = await producer.enqueue("remote", { fail: true }, { maxAttempts: 1 });
      // No timeouts of their own: only the event feed can end these waits (the test's timeout catches one that never ends).
      assert.equal(await producer.result(ok.id), "remote ok");
      await assert.rejects(producer.result(bad.id), { code: "task_failed", message: /remote failure/ });
    });

    // ---- uniqueness ----------------------------------------------------------------------------------------

    test("uniqueness: 50 concurrent enqueues with one key make one task; the key is free again once it completes", {
      timeout: 10_000,
    }, async (t) => {
      const gate = deferred();
      t.after(() => gate.resolve()); // before the node's stop hook: hooks run in order
      const conveyor = node(t);
      let runs = 0;
      conveyor.define("once", async (data: { i: number }) => {
        runs++;
        await gate.promise;
        return data.i;
      });
      await conveyor.start();
      const tasks = await Promise.all(
        Array.from({ length: 50 }, (_, i) => conveyor.enqueue("once", { i }, { key: "same" })),
      );
      const ids = new Set(tasks.map((task) => task.id));
      assert.equal(ids.size, 1, `ids: ${[...ids].join(", ")}`);
      assert.equal((await conveyor.list({ key: "same" })).tasks.length, 1);
      assert.equal((await conveyor.list()).tasks.length, 1);
      const [first] = tasks;
      const again = await conveyor.enqueueMany([{ type: "once", data: { i: 99 }, key: "same" }]);
      assert.equal(again[0]?.created, false);
      assert.equal(again[0]?.task.id, first!.id);
      // Which of the concurrent enqueues made the task is up to the store: on SQLite, whose writes one process makes
      // one after the other, the first; on PostgreSQL, whichever insert took the key first.
      const winner = (first!.data as { i: number }).i;
      assert.ok(
        tasks.every((task) => (task.data as { i: number }).i === winner),
        "every enqueue returned that task",
      );
      if (store === "sqlite") assert.equal(winner, 0);
      gate.resolve();
      assert.equal(await conveyor.result(first!.id, { timeoutMs: 5000 }), winner);
      const next = await conveyor.enqueue("once", { i: 1 }, { key: "same" });
      assert.notEqual(next.id, first!.id);
      assert.equal(await conveyor.result(next.id, { timeoutMs: 5000 }), 1);
      assert.equal(runs, 2);
      assert.equal((await conveyor.list({ key: "same" })).tasks.length, 2);
    });

    // ---- supervision and health ----------------------------------------------------------------------------

    test("supervisionTree lists every service and one worker per queue, all running; health follows the node's life", {
      timeout: 10_000,
    }, async (t) => {
      const conveyor = node(t, { queues: { slow: { concurrency: 1 } } });
      conveyor.define("a", () => null);
      conveyor.define("b", () => null, { queue: "slow" });
      const idle = await conveyor.health();
      assert.equal(idle.ok, false, "not running yet");
      // A lone node wins the leader lease on its elector's first attempt, right after start.
      const leading = conveyor.events.next("leader:gained");
      await conveyor.start();
      assert.equal((await leading).node, conveyor.nodeId);
      const tree = conveyor.supervisionTree();
      assert.equal(tree.state, "running");
      assert.equal(tree.leader, true);
      assert.deepEqual(
        tree.children.map((supervisor) => supervisor.name),
        ["services", "leader", "queues"],
      );
      const services = tree.children.flatMap((supervisor) =>
        supervisor.children.map((child) => [child.name, child.state]),
      );
      assert.deepEqual(services.map(([name]) => name).sort(), [
        "cron",
        "event-feed",
        "heartbeat",
        "leader-elector",
        "membership",
        "pruner",
        "queue-settings",
        "queue:conveyor",
        "queue:default",
        "queue:slow",
        "rescuer",
        "scheduler",
        "singletons",
        "stats",
      ]);
      const cluster = await conveyor.cluster();
      assert.equal(cluster.leader, conveyor.nodeId);
      for (const [name, state] of services) assert.equal(state, "running", `${name} is ${state}`);
      for (const supervisor of tree.children) assert.equal(supervisor.state, "running");
      const health = await conveyor.health();
      assert.deepEqual(health, { ok: true, state: "running", store: { ok: true } });
      const [me] = (await conveyor.nodes()).filter((n) => n.id === conveyor.nodeId);
      assert.ok(me !== undefined, "the node has a row");
      await conveyor.stop();
      assert.equal(conveyor.state, "stopped");
      assert.equal(conveyor.supervisionTree().state, "stopped");
      const after = await conveyor.health();
      assert.equal(after.ok, false);
      assert.equal(after.state, "stopped");
      await conveyor.stop(); // a second stop is harmless
    });

    test("start twice throws; define after start throws", { timeout: 10_000 }, async (t) => {
      const conveyor = node(t);
      conveyor.define("a", () => null);
      await conveyor.start();
      await assert.rejects(conveyor.start(), { name: "Error", message: "cannot start a node that is running" });
      assert.throws(() => conveyor.define("b", () => null), {
        name: "Error",
        message: "define task types before start()",
      });
      assert.equal(conveyor.state, "running", "the refused calls changed nothing");
    });
  });
}

// ---- bad input -----------------------------------------------------------------------------------------
// Checked before anything reaches the store: these run on SQLite only.

const sqliteNode = (t: TestContext) => testNode(t, "sqlite");

test("enqueue with bad input throws ValidationError (validation_failed) and inserts nothing", {
  timeout: 10_000,
}, async (t) => {
  const conveyor = sqliteNode(t);
  conveyor.define("ok", () => null);
  await conveyor.start();
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const bad: [string, Omit<TaskInput, "type"> & { type?: unknown }][] = [
    ["type with a space", { type: "has space" }],
    ["empty type", { type: "" }],
    ["numeric type", { type: 42 }],
    ["type too long", { type: "t".repeat(129) }],
    ["bad queue", { queue: "no/slash" }],
    ["empty queue", { queue: "" }],
    ["fractional priority", { priority: 1.5 }],
    ["NaN priority", { priority: Number.NaN }],
    ["huge priority", { priority: 2_000_000 }],
    ["string priority", { priority: "1" as unknown as number }],
    ["zero maxAttempts", { maxAttempts: 0 }],
    ["fractional maxAttempts", { maxAttempts: 2.5 }],
    ["too many maxAttempts", { maxAttempts: 1_000_000 }],
    ["negative delay", { delay: -1 }],
    ["NaN delay", { delay: Number.NaN }],
    ["Infinity delay", { delay: Number.POSITIVE_INFINITY }],
    ["delay over a year", { delay: 366 * 24 * 3600 * 1000 }],
    ["invalid runAt", { runAt: new Date("not a date") }],
    ["string runAt", { runAt: "2030-01-01" as unknown as Date }],
    ["runAt and delay", { runAt: new Date(), delay: 10 }],
    ["empty key", { key: "" }],
    ["key too long", { key: "k".repeat(256) }],
    ["numeric key", { key: 7 as unknown as string }],
    ["zero timeoutMs", { timeoutMs: 0 }],
    ["negative backoffMs", { backoffMs: -5 }],
    ["function in data", { data: { fn: (() => 1) as unknown as Json } }],
    ["NaN in data", { data: { n: Number.NaN } }],
    ["Infinity in data", { data: [1, Number.POSITIVE_INFINITY] }],
    ["undefined in an array", { data: [undefined as unknown as Json] }],
    ["Date in data", { data: { at: new Date() as unknown as Json } }],
    ["Map as data", { data: new Map() as unknown as Json }],
    ["bigint in data", { data: { n: 1n as unknown as Json } }],
    ["cyclic data", { data: cyclic as unknown as Json }],
  ];
  for (const [label, input] of bad) {
    const { type = "ok", data, ...options } = input;
    await assert.rejects(
      conveyor.enqueue(type as string, data, options),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError, `${label}: ${String(error)}`);
        assert.equal(error.code, "validation_failed", label);
        assert.equal(error.status, 400, label);
        return true;
      },
      label,
    );
  }
  // All or none: one bad input in a batch stops the good ones too.
  await assert.rejects(
    conveyor.enqueueMany([
      { type: "ok", data: 1 },
      { type: "ok", data: { n: Number.NaN } },
    ]),
    ValidationError,
  );
  assert.deepEqual((await conveyor.list()).tasks, []);
  assert.deepEqual(
    (await conveyor.queues()).flatMap((q) => Object.values(q.counts)).filter((n) => n > 0),
    [],
  );
  // The same edge accepts good input.
  const good = await conveyor.enqueue(
    "ok",
    { nested: [1, "two", true, null, { x: -0.5 }] },
    { priority: -3, key: "k", delay: 0 },
  );
  assert.equal(good.state, "queued");
});

test("define with a bad type or queue name throws ConfigError", (t) => {
  const conveyor = sqliteNode(t);
  for (const type of ["", "has space", "slash/type", "x".repeat(129)]) {
    assert.throws(
      () => conveyor.define(type, () => null),
      (error: unknown) => error instanceof ConfigError && error.code === "config_invalid",
      type,
    );
  }
  assert.throws(() => conveyor.define("ok", () => null, { queue: "bad queue" }), ConfigError);
  assert.throws(() => conveyor.define("ok", () => null, { isolation: "thread" }), ConfigError);
  assert.throws(() => conveyor.define("ok", { module: "file:///nowhere.ts" }, { isolation: "inline" }), ConfigError);
});

test("define with bad options throws ConfigError rather than failing later", (t) => {
  const conveyor = sqliteNode(t);
  const bad: [string, Record<string, unknown>][] = [
    ["maxAttempts 0", { maxAttempts: 0 }],
    ["fractional maxAttempts", { maxAttempts: 1.5 }],
    ["fractional priority", { priority: 0.5 }],
    ["timeoutMs 0", { timeoutMs: 0 }],
    ["negative graceMs", { graceMs: -1 }],
    ["NaN graceMs", { graceMs: Number.NaN }],
    ["negative backoff base", { backoff: { baseMs: -10 } }],
    ["jitter above 1", { backoff: { jitter: 2 } }],
    ["unknown isolation", { isolation: "process" }],
  ];
  const accepted: string[] = [];
  for (const [label, options] of bad) {
    try {
      conveyor.define("t", () => null, options);
      accepted.push(label);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `${label}: ${String(error)}`);
    }
  }
  assert.deepEqual(accepted, [], "these bad options were accepted");
});

test("bad node options throw ConfigError at construction", () => {
  const bad: [string, ConveyorOptions][] = [
    ["concurrency -1", { concurrency: -1 }],
    ["fractional concurrency", { concurrency: 1.5 }],
    ["NaN concurrency", { concurrency: Number.NaN }],
    ["pollIntervalMs 0", { pollIntervalMs: 0 }],
    ["heartbeatIntervalMs as a string", { heartbeatIntervalMs: "100" as unknown as number }],
    ["negative shutdownGraceMs", { shutdownGraceMs: -1 }],
    ["batchSize 0", { batchSize: 0 }],
    ["bad queue name", { queues: { "bad queue": { concurrency: 1 } } }],
    ["negative queue concurrency", { queues: { slow: { concurrency: -1 } } }],
  ];
  for (const [label, options] of bad) {
    assert.throws(
      () => new Conveyor({ database: tempDatabase(), logger: pino({ level: "silent" }), ...options }),
      (error: unknown) => error instanceof ConfigError && error.code === "config_invalid",
      label,
    );
  }
});

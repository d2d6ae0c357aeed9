/**
 * Leader, cron and singletons with several nodes in one process on one SQLite file. Every wait is on the nodes'
 * events (leader:gained, task:started, task:completed) or on the store calls a service makes, never on a poll of the
 * store or a pause. On SQLite only: the multi-process versions on PostgreSQL (kill -9, failover, one tick per
 * second cluster-wide, a singleton moving) are test/cluster/membership, cron and singleton.test.ts.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import type { Task } from "../core/task.ts";
import { Conveyor } from "./conveyor.ts";
import { LEADER_LEASE } from "./leader.ts";
import type { NodeEventMap, NodeEventName } from "./node-events.ts";
import type { ConveyorOptions } from "./options.ts";
import { singletonKey } from "./singleton-keeper.ts";
import { deferred, tempDatabase } from "./fixtures/runtime-handlers.ts";

const FAST = {
  heartbeatIntervalMs: 100,
  deadAfterBeats: 3,
  pollIntervalMs: 100,
  logger: pino({ level: "silent" }),
} satisfies ConveyorOptions;

function nodes(t: TestContext, count: number, options: ConveyorOptions = {}): Conveyor[] {
  const database = tempDatabase();
  const made = Array.from({ length: count }, () => new Conveyor({ ...FAST, database, ...options }));
  t.after(() => Promise.all(made.map((node) => node.stop())));
  return made;
}

/**
 * The first `event` that one of `nodes` emits and that satisfies `match`, with the node that emitted it; listen
 * before causing it. Rejects after `timeoutMs`.
 */
function firstEvent<E extends NodeEventName>(
  nodes: Conveyor[],
  event: E,
  match: (...args: NodeEventMap[E]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<{ node: Conveyor; args: NodeEventMap[E][0] }> {
  return new Promise((resolve, reject) => {
    const listeners = nodes.map((node) => {
      const listener = (...args: NodeEventMap[E]) => {
        if (!match(...args)) return;
        done();
        resolve({ node, args: args[0] });
      };
      node.events.on(event, listener as never);
      return () => node.events.off(event, listener as never);
    });
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      for (const off of listeners) off();
    };
  });
}

/** Records, at each leader:gained, any other node that believes it leads too: what must never happen. */
function watchForTwoLeaders(all: Conveyor[]): string[] {
  const overlaps: string[] = [];
  for (const node of all) {
    node.events.on("leader:gained", () => {
      const others = all.filter((other) => other !== node && other.supervisionTree().leader);
      if (others.length > 0) overlaps.push(`${node.nodeId} gained while ${others.map((o) => o.nodeId)} led`);
    });
  }
  return overlaps;
}

test("one leader among three nodes; a leader that stops hands over at once", { timeout: 15_000 }, async (t) => {
  // A lease of a minute (100 ms × 600), longer than the test: once the leader stops, a new one can lead within the
  // test only if the stop released the lease. Nobody dies here, so the long dead time changes nothing else.
  const all = nodes(t, 3, { deadAfterBeats: 600 });
  for (const node of all) node.define("noop", () => null);
  const overlaps = watchForTwoLeaders(all);
  const elected = firstEvent(all, "leader:gained");
  await Promise.all(all.map((node) => node.start()));
  const first = await elected;
  assert.equal(first.args.node, first.node.nodeId);
  assert.deepEqual(
    all.filter((node) => node.supervisionTree().leader).map((node) => node.nodeId),
    [first.node.nodeId],
    "exactly one node leads",
  );
  for (const node of all) assert.equal((await node.cluster()).leader, first.node.nodeId, "every node sees that leader");

  const rest = all.filter((node) => node !== first.node);
  const handedOver = firstEvent(rest, "leader:gained");
  await first.node.stop();
  // Read through a node still running: the stopped one has closed its store.
  assert.equal(await rest[0]!.store.leaseGet({ name: LEADER_LEASE }), null, "the stop released the lease");
  const second = await handedOver;
  assert.notEqual(second.args.node, first.args.node);
  assert.equal((await second.node.cluster()).leader, second.node.nodeId);
  assert.deepEqual(
    rest.filter((node) => node.supervisionTree().leader).map((node) => node.nodeId),
    [second.node.nodeId],
  );
  assert.deepEqual(overlaps, [], "never two leaders at once");
});

test("a cron schedule fires once per tick with three nodes", { timeout: 15_000 }, async (t) => {
  const runs: number[] = [];
  const all = nodes(t, 3);
  const [a] = all;
  const fourTicks = deferred();
  let completed = 0;
  for (const node of all) {
    node.define("tick", (_data, ctx) => void runs.push(ctx.id));
    node.events.on("task:completed", ({ task }) => {
      if (task.type === "tick" && ++completed === 4) fourTicks.resolve();
    });
  }
  await a!.schedule("every-second", { cron: "* * * * * *", type: "tick", data: { hello: "world" } });
  await Promise.all(all.map((node) => node.start()));
  await fourTicks.promise;
  const tasks = (await a!.list({ type: "tick", limit: 100 })).tasks;
  const seconds = tasks.map((task) => Math.floor(task.createdAt.getTime() / 1000));
  assert.equal(new Set(seconds).size, seconds.length, `one task per second: ${seconds.join(", ")}`);
  assert.equal(new Set(runs).size, runs.length, "each task ran once");
  assert.deepEqual(tasks[0]!.data, { hello: "world" });
});

test("a singleton type has exactly one live task, which moves to another node when its node stops", {
  timeout: 15_000,
}, async (t) => {
  const running = new Map<string, number>();
  const all = nodes(t, 2, { shutdownGraceMs: 0 });
  const runningOn = new Map(all.map((node) => [node.nodeId, deferred()]));
  for (const node of all) {
    node.define(
      "cleaner",
      async (_data, ctx) => {
        running.set(node.nodeId, (running.get(node.nodeId) ?? 0) + 1);
        runningOn.get(node.nodeId)!.resolve();
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
        running.set(node.nodeId, running.get(node.nodeId)! - 1);
      },
      { singleton: true, graceMs: 100 },
    );
  }
  // The keeper's passes (on the leader, every heartbeat) are its inserts of the singleton's key: count them.
  const passes: { created: boolean }[] = [];
  let onPass = () => {};
  for (const node of all) {
    const insert = node.store.taskInsertMany.bind(node.store);
    node.store.taskInsertMany = async (params) => {
      const outcomes = await insert(params);
      if (params.tasks.some((task) => task.key === singletonKey("cleaner"))) {
        passes.push(...outcomes.map(({ created }) => ({ created })));
        onPass();
      }
      return outcomes;
    };
  }
  const started = firstEvent(all, "task:started", ({ task }) => task.type === "cleaner");
  await Promise.all(all.map((node) => node.start()));
  const { node: owner, args } = await started;
  const first: Task = args.task;
  assert.equal(first.key, singletonKey("cleaner"));
  // Five more keeper passes while it runs: each finds the task alive and adds none.
  const seen = passes.length;
  const fiveMore = deferred();
  onPass = () => passes.length >= seen + 5 && fiveMore.resolve();
  await fiveMore.promise;
  assert.deepEqual(
    passes.slice(seen).map((pass) => pass.created),
    Array(passes.length - seen).fill(false),
    "no pass added a second task",
  );
  const active = (await owner.list({ type: "cleaner", states: ["scheduled", "queued", "running"] })).tasks;
  assert.deepEqual(
    active.map((task) => task.id),
    [first.id],
    "one active singleton task",
  );

  const other = all.find((node) => node !== owner)!;
  const moved = firstEvent([other], "task:started", ({ task }) => task.type === "cleaner");
  await owner.stop();
  const { args: movedArgs } = await moved;
  assert.equal(movedArgs.task.id, first.id, "the same task, handed back and claimed by the survivor");
  await runningOn.get(other.nodeId)!.promise;
  assert.equal(running.get(other.nodeId), 1);
  assert.equal(running.get(owner.nodeId), 0, "it stopped on the node that stopped");
  assert.equal((await other.get(first.id))?.node, other.nodeId);
});

/**
 * Leader, cron and singletons with several nodes in one process on one SQLite file. The multi-process
 * versions (kill -9, PostgreSQL) live in test/cluster.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { Conveyor } from "./conveyor.ts";
import type { ConveyorOptions } from "./options.ts";
import { singletonKey } from "./singleton-keeper.ts";
import { tempDatabase } from "./fixtures/runtime-handlers.ts";

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

/** Bounded wait for a condition that a background service brings about. */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

test("one leader among three nodes; a leader that stops hands over at once", { timeout: 15_000 }, async (t) => {
  const [a, b, c] = nodes(t, 3);
  for (const node of [a!, b!, c!]) node.define("noop", () => null);
  await Promise.all([a!.start(), b!.start(), c!.start()]);
  const first = await until("a leader", async () => (await a!.cluster()).leader);
  const leaders = [a!, b!, c!].filter((node) => node.supervisionTree().leader);
  await until("the leader's services", () => [a!, b!, c!].filter((node) => node.supervisionTree().leader).length === 1);
  assert.ok(leaders.length <= 1, "never two leaders");
  const leader = [a!, b!, c!].find((node) => node.nodeId === first)!;
  const stopped = Date.now();
  await leader.stop();
  const rest = [a!, b!, c!].filter((node) => node !== leader);
  const second = await until("a new leader", async () => (await rest[0]!.cluster()).leader);
  assert.notEqual(second, first);
  assert.ok(rest.some((node) => node.nodeId === second));
  // The lease was released on stop: the next election needs one renewal interval, not a whole lease.
  assert.ok(Date.now() - stopped < 1000, `new leader after ${Date.now() - stopped} ms`);
});

test("a cron schedule fires once per tick with three nodes", { timeout: 15_000 }, async (t) => {
  const runs: number[] = [];
  const [a, b, c] = nodes(t, 3);
  for (const node of [a!, b!, c!]) node.define("tick", (_data, ctx) => void runs.push(ctx.id));
  await a!.schedule("every-second", { cron: "* * * * * *", type: "tick", data: { hello: "world" } });
  await Promise.all([a!.start(), b!.start(), c!.start()]);
  await until(
    "four ticks",
    async () => (await a!.list({ type: "tick", states: ["completed"] })).tasks.length >= 4,
    8000,
  );
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
  const [a, b] = nodes(t, 2, { shutdownGraceMs: 0 });
  for (const node of [a!, b!]) {
    node.define(
      "cleaner",
      async (_data, ctx) => {
        running.set(node.nodeId, (running.get(node.nodeId) ?? 0) + 1);
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
        running.set(node.nodeId, running.get(node.nodeId)! - 1);
      },
      { singleton: true, graceMs: 100 },
    );
  }
  await Promise.all([a!.start(), b!.start()]);
  const first = await until(
    "the singleton running",
    async () => (await a!.list({ key: singletonKey("cleaner"), states: ["running"] })).tasks[0],
  );
  await sleep(500); // several keeper passes: still one
  const active = (await a!.list({ type: "cleaner", states: ["scheduled", "queued", "running"] })).tasks;
  assert.equal(active.length, 1, "one active singleton task");
  const owner = [a!, b!].find((node) => node.nodeId === first.node)!;
  const other = [a!, b!].find((node) => node !== owner)!;
  await owner.stop();
  const moved = await until("the singleton on the other node", async () => {
    const [task] = (await other.list({ key: singletonKey("cleaner"), states: ["running"] })).tasks;
    return task?.node === other.nodeId ? task : undefined;
  });
  assert.equal(moved.id, first.id, "the same task, handed back and claimed by the survivor");
  assert.equal(running.get(other.nodeId), 1);
});
